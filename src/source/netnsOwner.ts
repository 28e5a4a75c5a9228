/**
 * Names a network namespace by what lives in it, from what every node has
 * without credentials: the cgroup of the processes in it (/proc/PID/cgroup:
 * a pod's UID and a container's id are in the path, for both of kubelet's
 * cgroup drivers and for cgroup v1 and v2), kubelet's pod log directories
 * (/var/log/pods/<namespace>_<name>_<uid>/<container>/), and the runtimes'
 * own state (containerd's and CRI-O's OCI configs carry the CRI's pod and
 * container names as annotations; Docker's config.v2.json the container's
 * name). No socket is needed and none is opened.
 *
 * CTOP_HOST_ROOT (default /) is where those directories are looked for: the
 * host's filesystem mounted elsewhere (a container), or a test's fixture tree.
 * /proc is always this process's own.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ownerRank, type ContainerRuntime, type NetnsOwner } from '../model/owner.js';
import {
  parseCgroupFile,
  parseDockerConfig,
  parseOciConfig,
  parsePodLogDir,
  type ContainerConfigFacts,
  type PodLogDir,
} from './netnsOwnerParse.js';

/** Processes looked at per namespace: a pod has a few; the host is never asked. */
const PIDS_PER_NETNS = 16;
/** Container configs remembered by id (they do not change while it runs). */
const CONFIG_CACHE_MAX = 4096;
/** A config larger than this is not a container config. */
const CONFIG_MAX_BYTES = 1 << 20;

function hostRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.CTOP_HOST_ROOT && env.CTOP_HOST_ROOT !== '' ? env.CTOP_HOST_ROOT : '/';
}

function readSmall(path: string): string | undefined {
  try {
    const st = statSync(path);
    if (!st.isFile() || st.size > CONFIG_MAX_BYTES) return undefined;
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

export interface OwnerQuery {
  inode: number;
  /** processes in the namespace, in /proc order */
  pids: number[];
  /** its `ip netns` name, if it has one */
  named?: string;
  host: boolean;
}

export class OwnerResolver {
  private readonly last = new Map<number, NetnsOwner>();
  private readonly configs = new Map<string, ContainerConfigFacts>();
  private pods: Map<string, PodLogDir & { dir: string }> | undefined;

  constructor(private readonly root = hostRoot()) {}

  /** Call once per scan: kubelet's pod directories are read again lazily. */
  beginScan(): void {
    this.pods = undefined;
  }

  /** Forget namespaces that are gone (the scan no longer sees them). */
  retain(inodes: ReadonlySet<number>): void {
    for (const k of this.last.keys()) if (!inodes.has(k)) this.last.delete(k);
  }

  resolve(q: OwnerQuery): NetnsOwner {
    const found = this.find(q);
    // A pod or container being torn down loses its processes before its
    // namespace goes: keep the name it had, so its last windows carry it.
    const before = this.last.get(q.inode);
    const owner = before && !q.host && (before.kind === 'pod' || before.kind === 'container') && ownerRank(before) > ownerRank(found) ? before : found;
    this.last.set(q.inode, owner);
    return owner;
  }

  private find(q: OwnerQuery): NetnsOwner {
    if (q.host) return { kind: 'host', name: 'host' };
    let podUid: string | undefined;
    const containers = new Map<string, ContainerRuntime | undefined>();
    let unit: string | undefined;
    for (const pid of q.pids.slice(0, PIDS_PER_NETNS)) {
      const text = readSmall(`/proc/${pid}/cgroup`);
      if (text === undefined) continue;
      const f = parseCgroupFile(text);
      podUid ??= f.podUid;
      if (f.containerId && !containers.has(f.containerId)) containers.set(f.containerId, f.runtime);
      unit ??= f.unit;
    }
    const facts = [...containers].map(([id, runtime]) => ({ id, runtime, ...this.config(id, runtime) }));
    // a pod: by its cgroup, or by the CRI's labels on one of its containers
    podUid ??= facts.find((f) => f.podUid)?.podUid;
    if (podUid) return this.pod(podUid, facts);
    const first = facts[0];
    if (first) {
      return {
        kind: 'container',
        name: first.name ?? first.id.slice(0, 12),
        ...(first.runtime ? { runtime: first.runtime } : {}),
        id: first.id,
        containers: facts.map((f) => f.name ?? f.id.slice(0, 12)),
      };
    }
    if (q.named !== undefined) return { kind: 'netns', name: q.named };
    if (unit) return { kind: 'systemd', name: unit };
    const pid = q.pids[0];
    return pid === undefined ? { kind: 'process', name: '?' } : { kind: 'process', name: comm(pid), pid };
  }

  private pod(uid: string, facts: (ContainerConfigFacts & { id: string; runtime?: ContainerRuntime })[]): NetnsOwner {
    const dir = this.podDirs().get(uid);
    const labelled = facts.find((f) => f.podName);
    const sandbox = facts.find((f) => f.sandbox) ?? facts[0];
    // kubelet's log directory lists every container the pod ran; without it,
    // the workloads' own configs
    const fromLogs = dir ? list(join(this.root, 'var/log/pods', dir.dir)).sort() : [];
    const fromConfigs = facts.filter((f) => !f.sandbox && f.name).map((f) => f.name!);
    return {
      kind: 'pod',
      name: dir?.name ?? labelled?.podName ?? uid,
      ...(dir?.namespace ?? labelled?.podNamespace ? { namespace: dir?.namespace ?? labelled?.podNamespace } : {}),
      uid,
      containers: fromLogs.length > 0 ? fromLogs : [...new Set(fromConfigs)].sort(),
      ...(sandbox?.runtime ? { runtime: sandbox.runtime } : {}),
      ...(sandbox ? { id: sandbox.id } : {}),
    };
  }

  private podDirs(): Map<string, PodLogDir & { dir: string }> {
    if (this.pods) return this.pods;
    this.pods = new Map();
    for (const d of list(join(this.root, 'var/log/pods'))) {
      const p = parsePodLogDir(d);
      if (p) this.pods.set(p.uid, { ...p, dir: d });
    }
    return this.pods;
  }

  private config(id: string, runtime: ContainerRuntime | undefined): ContainerConfigFacts {
    const cached = this.configs.get(id);
    if (cached) return cached;
    const r = this.root;
    let facts: ContainerConfigFacts = {};
    const docker = runtime === 'docker' || runtime === undefined ? readSmall(join(r, 'var/lib/docker/containers', id, 'config.v2.json')) : undefined;
    if (docker !== undefined) facts = parseDockerConfig(docker);
    else {
      const candidates = [
        ...list(join(r, 'run/containerd/io.containerd.runtime.v2.task')).map((ns) => join(r, 'run/containerd/io.containerd.runtime.v2.task', ns, id, 'config.json')),
        join(r, 'run/containers/storage/overlay-containers', id, 'userdata/config.json'),
        join(r, 'var/lib/containers/storage/overlay-containers', id, 'userdata/config.json'),
      ];
      for (const c of candidates) {
        const text = readSmall(c);
        if (text !== undefined) {
          facts = parseOciConfig(text);
          break;
        }
      }
    }
    // an id whose config is not (yet) there is asked again next scan
    if (Object.keys(facts).length > 0) {
      if (this.configs.size >= CONFIG_CACHE_MAX) this.configs.clear();
      this.configs.set(id, facts);
    }
    return facts;
  }
}
