/**
 * Who a network namespace belongs to, found from the processes in it: a
 * Kubernetes pod, a container of a runtime, a systemd unit, an `ip netns`
 * name, the host, or (none of these) its first process.
 *
 * Every string here comes from other users (pod and container names are
 * chosen by whoever deploys): the fields hold the text as found, cut to
 * OWNER_TEXT_MAX characters; views clean it before a terminal or a page.
 */

export type OwnerKind = 'host' | 'pod' | 'container' | 'systemd' | 'netns' | 'process';

export type ContainerRuntime = 'containerd' | 'cri-o' | 'docker' | 'podman';

export interface NetnsOwner {
  kind: OwnerKind;
  /** pod name, container name (or short id), unit, `ip netns` name, "host", or the process's comm */
  name: string;
  /** the pod's Kubernetes namespace */
  namespace?: string;
  /** the pod's UID */
  uid?: string;
  /** containers in the pod (or the one container): names where known */
  containers?: string[];
  runtime?: ContainerRuntime;
  /** the container's id (a pod: its sandbox's) */
  id?: string;
  /** kind 'process': its pid */
  pid?: number;
}

/** Longest text kept from any one field (Kubernetes names are at most 253). */
export const OWNER_TEXT_MAX = 253;

/** How an owner is named in one line: "pod kube-system/coredns-5d78", "docker web", "sshd.service". */
export function ownerLabel(o: NetnsOwner): string {
  switch (o.kind) {
    case 'host':
      return 'host';
    case 'pod':
      return `pod ${o.namespace ?? '?'}/${o.name}`;
    case 'container':
      return `${o.runtime ?? 'container'} ${o.name}`;
    case 'systemd':
      return o.name;
    case 'netns':
      return o.name;
    case 'process':
      return `pid ${o.pid ?? '?'} (${o.name})`;
  }
}

/** Whether `o` says more than `than` (a pod or container outranks what a later scan may find). */
export function ownerRank(o: NetnsOwner): number {
  return { pod: 5, container: 4, systemd: 3, netns: 2, host: 6, process: 1 }[o.kind];
}
