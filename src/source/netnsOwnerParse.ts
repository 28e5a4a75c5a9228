/**
 * Pure readers of the text that names a namespace's owner: a process's
 * /proc/PID/cgroup, kubelet's pod log directory names, and the runtimes'
 * container configs. No I/O; netnsOwner.ts reads the files.
 *
 * The cgroup path shapes (cgroup v1 lines "N:controller:/path", v2 "0::/path"):
 *   kubelet, cgroupfs driver  /kubepods[/burstable|/besteffort]/pod<uid>/<id>
 *   kubelet, systemd driver   /kubepods.slice/kubepods-burstable.slice/
 *                             kubepods-burstable-pod<uid, '-' as '_'>.slice/<scope>
 *       scope: cri-containerd-<id>.scope, crio-<id>.scope, docker-<id>.scope
 *       (CRI-O also puts conmon in crio-conmon-<id>.scope)
 *   Docker                    /docker/<id>, /system.slice/docker-<id>.scope
 *   Podman                    /machine.slice/libpod-<id>.scope, .../libpod-<id>.scope
 *   containerd (nerdctl)      /<containerd namespace>/<id>, /system.slice/nerdctl-<id>.scope
 *   systemd unit              /system.slice/<unit>.service (or any slice's .service)
 */
import { OWNER_TEXT_MAX, type ContainerRuntime } from '../model/owner.js';

export interface CgroupFacts {
  podUid?: string;
  containerId?: string;
  runtime?: ContainerRuntime;
  /** a systemd unit (a service or scope that is not a container) */
  unit?: string;
}

const UID = /([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/;
const ID64 = /^[0-9a-f]{64}$/;

const SCOPES: [RegExp, ContainerRuntime][] = [
  [/^cri-containerd-([0-9a-f]{64})\.scope$/, 'containerd'],
  [/^crio-([0-9a-f]{64})\.scope$/, 'cri-o'],
  [/^docker-([0-9a-f]{64})\.scope$/, 'docker'],
  [/^libpod-([0-9a-f]{64})\.scope$/, 'podman'],
  [/^nerdctl-([0-9a-f]{64})\.scope$/, 'containerd'],
];

/** The owner facts of one cgroup path. */
export function parseCgroupPath(path: string): CgroupFacts {
  const parts = path.split('/').filter(Boolean);
  const out: CgroupFacts = {};
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    const pod = /^(?:kubepods-(?:burstable-|besteffort-)?)?pod(.+?)(?:\.slice)?$/.exec(p);
    if (pod && (parts[0]!.startsWith('kubepods') || p.startsWith('kubepods'))) {
      const m = UID.exec(pod[1]!);
      if (m) out.podUid = m[1]!.replace(/_/g, '-');
      continue;
    }
    for (const [re, runtime] of SCOPES) {
      const m = re.exec(p);
      if (m) {
        out.containerId = m[1];
        out.runtime = runtime;
      }
    }
    if (!out.containerId && ID64.test(p) && i > 0) {
      // cgroupfs: a bare id under its parent: /kubepods/…/pod<uid>/<id>, /docker/<id>, /<ns>/<id>
      out.containerId = p;
      const parent = parts[i - 1]!;
      if (parent === 'docker') out.runtime = 'docker';
      else if (!parent.startsWith('pod') && !parent.startsWith('kubepods')) out.runtime = 'containerd';
    }
  }
  if (!out.containerId && !out.podUid) {
    const unit = parts.reverse().find((p) => /\.service$/.test(p));
    if (unit) out.unit = unit.slice(0, OWNER_TEXT_MAX);
  }
  return out;
}

/**
 * The owner facts of a whole /proc/PID/cgroup file: the line that says the
 * most wins (a pod over a container over a unit), so v1 hierarchies that
 * place the process differently from v2, or not at all, do not hide it.
 */
export function parseCgroupFile(text: string): CgroupFacts {
  let best: CgroupFacts = {};
  const score = (f: CgroupFacts): number => (f.podUid ? 4 : 0) + (f.containerId ? 2 : 0) + (f.unit ? 1 : 0);
  for (const line of text.split('\n')) {
    // "hierarchy-ID:controller-list:cgroup-path"; the path may itself hold ':'
    const m = /^\d+:[^:]*:(.*)$/.exec(line);
    if (!m) continue;
    const f = parseCgroupPath(m[1]!);
    if (score(f) > score(best)) best = f;
  }
  return best;
}

export interface PodLogDir {
  namespace: string;
  name: string;
  uid: string;
}

/**
 * kubelet's /var/log/pods/<namespace>_<name>_<uid>: neither a Kubernetes
 * namespace nor a pod name may hold '_' (DNS labels and subdomains), so the
 * split is unambiguous; the UID is the last field.
 */
export function parsePodLogDir(dir: string): PodLogDir | undefined {
  const m = /^([^_]+)_([^_]+)_([0-9a-f-]{36})$/.exec(dir);
  if (!m) return undefined;
  return { namespace: m[1]!.slice(0, OWNER_TEXT_MAX), name: m[2]!.slice(0, OWNER_TEXT_MAX), uid: m[3]! };
}

export interface ContainerConfigFacts {
  /** the container's own name */
  name?: string;
  podName?: string;
  podNamespace?: string;
  podUid?: string;
  /** a pod's sandbox (pause) container rather than a workload */
  sandbox?: boolean;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v.slice(0, OWNER_TEXT_MAX) : undefined;
}

/**
 * An OCI runtime config (containerd's task config.json, CRI-O's
 * userdata/config.json): the CRI puts the pod and container names in its
 * annotations. containerd: io.kubernetes.cri.*; CRI-O: io.kubernetes.*.
 */
export function parseOciConfig(json: string): ContainerConfigFacts {
  let a: Record<string, unknown> = {};
  try {
    const doc = JSON.parse(json) as { annotations?: Record<string, unknown> };
    a = doc.annotations && typeof doc.annotations === 'object' ? doc.annotations : {};
  } catch {
    return {};
  }
  const type = str(a['io.kubernetes.cri.container-type']) ?? str(a['io.kubernetes.cri-o.ContainerType']);
  const out: ContainerConfigFacts = {
    name: str(a['io.kubernetes.cri.container-name']) ?? str(a['io.kubernetes.container.name']),
    podName: str(a['io.kubernetes.cri.sandbox-name']) ?? str(a['io.kubernetes.pod.name']),
    podNamespace: str(a['io.kubernetes.cri.sandbox-namespace']) ?? str(a['io.kubernetes.pod.namespace']),
    podUid: str(a['io.kubernetes.cri.sandbox-uid']) ?? str(a['io.kubernetes.pod.uid']),
    sandbox: type === 'sandbox' || undefined,
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as ContainerConfigFacts;
}

/** Docker's /var/lib/docker/containers/<id>/config.v2.json: "Name": "/web", labels as the CRI's. */
export function parseDockerConfig(json: string): ContainerConfigFacts {
  try {
    const doc = JSON.parse(json) as { Name?: unknown; Config?: { Labels?: Record<string, unknown> } };
    const labels = doc.Config?.Labels ?? {};
    const name = typeof doc.Name === 'string' ? str(doc.Name.replace(/^\//, '')) : undefined;
    const out: ContainerConfigFacts = {
      name: str(labels['io.kubernetes.container.name']) ?? name,
      podName: str(labels['io.kubernetes.pod.name']),
      podNamespace: str(labels['io.kubernetes.pod.namespace']),
      podUid: str(labels['io.kubernetes.pod.uid']),
    };
    return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as ContainerConfigFacts;
  } catch {
    return {};
  }
}
