/**
 * Namespaces named by their owners, with the shapes built for real: network
 * namespaces whose process is moved into cgroups shaped as kubelet (both
 * cgroup drivers: cgroupfs paths in a v1 hierarchy, systemd slices in the v2
 * one), Docker and CRI-O make them, kubelet's pod log directories and the
 * runtimes' configs in a temporary tree (CTOP_HOST_ROOT), and one namespace
 * with no owner at all. Then as a person sees them: snapshot JSON and text,
 * the metrics, the live screen. Hostile names (control characters, very long)
 * come out escaped and cut. Every cgroup, namespace, process and file made
 * here is removed, also on failure.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SnapshotV1 } from '../../src/model/snapshot.js';
import type { NetnsOwner } from '../../src/model/owner.js';
import { killStrayClis, runCli, startCli } from '../support/cli.js';
import { freePort } from '../support/prometheus.js';
import { Tmux } from '../support/tmux.js';

const TAG = `${process.pid}`;
const UID1 = `1a2b3c4d-0000-4000-8000-${TAG.padStart(12, '0')}`;
const UID2 = `2a2b3c4d-0000-4000-8000-${TAG.padStart(12, '0')}`;
const UID3 = `3a2b3c4d-0000-4000-8000-${TAG.padStart(12, '0')}`;
const UID4 = `4a2b3c4d-0000-4000-8000-${TAG.padStart(12, '0')}`;
const cid = (n: number): string => `${n}`.repeat(8) + TAG.padStart(56, 'c');
const V1 = '/sys/fs/cgroup/pids';
const INIT_NET_INO = 0xeffffff9;
const V2 = '/sys/fs/cgroup/unified';
const EVIL_POD = `\x1b]0;owned\x07red\x1b[31m<b onmouseover=alert(1)>${'p'.repeat(150)}`;
const EVIL_CONTAINER = `\x1b[2J\x9bevil${'c'.repeat(400)}`;

interface Case {
  ns: string;
  /** made by its test, not before all */
  late?: boolean;
  /** the leaf cgroup the process goes into; its top directory is removed at the end */
  cgroup?: string;
  top?: string;
  want: NetnsOwner;
  label: string;
}

const root = mkdtempSync(join(tmpdir(), 'ctop-owners-'));
const nsName = (k: string): string => `ctop-t-own-${TAG}-${k}`;
const cases: Record<string, Case> = {
  podV1: {
    ns: nsName('pod1'),
    top: `${V1}/kubepods`,
    cgroup: `${V1}/kubepods/burstable/pod${UID1}/${cid(1)}`,
    want: { kind: 'pod', name: 'web-7d9', namespace: 'shop', uid: UID1, containers: ['nginx', 'sidecar'], id: cid(1) },
    label: 'pod shop/web-7d9',
  },
  podV2: {
    ns: nsName('pod2'),
    top: `${V2}/kubepods.slice`,
    cgroup: `${V2}/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID2.replace(/-/g, '_')}.slice/cri-containerd-${cid(2)}.scope`,
    want: { kind: 'pod', name: 'coredns-5d78', namespace: 'kube-system', uid: UID2, containers: ['coredns'], runtime: 'containerd', id: cid(2) },
    label: 'pod kube-system/coredns-5d78',
  },
  docker: {
    ns: nsName('dock'),
    top: `${V1}/docker`,
    cgroup: `${V1}/docker/${cid(3)}`,
    want: { kind: 'container', name: 'cache', runtime: 'docker', id: cid(3), containers: ['cache'] },
    label: 'docker cache',
  },
  crio: {
    ns: nsName('crio'),
    top: `${V2}/ctop-test-${TAG}.slice`,
    cgroup: `${V2}/ctop-test-${TAG}.slice/crio-${cid(4)}.scope`,
    want: { kind: 'container', name: 'queue', runtime: 'cri-o', id: cid(4), containers: ['queue'] },
    label: 'cri-o queue',
  },
  evilPod: {
    ns: nsName('evil'),
    top: `${V1}/kubepods-ctop-${TAG}`,
    cgroup: `${V1}/kubepods-ctop-${TAG}/pod${UID3}/${cid(5)}`,
    want: { kind: 'pod', name: EVIL_POD, namespace: 'tenant', uid: UID3, containers: [EVIL_CONTAINER.slice(0, 200)], id: cid(5) },
    label: '',
  },
  plain: { ns: nsName('plain'), want: { kind: 'netns', name: nsName('plain') }, label: nsName('plain') },
  late: {
    ns: nsName('late'),
    late: true,
    top: `${V1}/kubepods-late-${TAG}`,
    cgroup: `${V1}/kubepods-late-${TAG}/pod${UID4}/${cid(6)}`,
    want: { kind: 'pod', name: 'late-1', namespace: 'shop', uid: UID4, containers: ['app'], id: cid(6) },
    label: 'pod shop/late-1',
  },
};

const sh = (cmd: string, args: string[], input?: string): string => execFileSync(cmd, args, { encoding: 'utf8', input, timeout: 20_000 });
const procs: ChildProcess[] = [];
let unnamed: ChildProcess | undefined;

function cleanup(): void {
  for (const p of [...procs, ...(unnamed ? [unnamed] : [])]) {
    try {
      p.kill('SIGKILL');
    } catch {
      // gone
    }
  }
  for (const c of Object.values(cases)) {
    try {
      for (const pid of sh('ip', ['netns', 'pids', c.ns]).split(/\s+/).filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // no such namespace
    }
    try {
      sh('ip', ['netns', 'del', c.ns]);
    } catch {
      // gone
    }
  }
  // cgroups go once their processes are gone: deepest first, only what this file made
  const deadline = Date.now() + 5000;
  for (const c of Object.values(cases)) {
    if (!c.cgroup || !c.top) continue;
    const dirs: string[] = [];
    for (let d = c.cgroup; d.length >= c.top.length; d = d.slice(0, d.lastIndexOf('/'))) dirs.push(d);
    for (const d of dirs) {
      while (existsSync(d)) {
        try {
          rmdirSync(d);
        } catch (e) {
          if (Date.now() > deadline) throw e;
          execFileSync('sleep', ['0.05']);
        }
      }
    }
  }
  rmSync(root, { recursive: true, force: true });
}
process.on('exit', () => {
  try {
    cleanup();
  } catch {
    // best effort at exit
  }
});

/** Starts `sleep` inside the namespace and moves it into the case's cgroup. */
async function populate(c: Case, intoCgroup = true): Promise<number> {
  sh('ip', ['netns', 'add', c.ns]);
  sh('ip', ['-n', c.ns, 'link', 'set', 'lo', 'up']);
  // conntrack on, and a few entries, so every view has the namespace to show
  sh('ip', ['netns', 'exec', c.ns, 'nft', 'table inet own { chain out { type filter hook output priority 0; ct state new counter; }; }']);
  for (let port = 1; port <= 3; port++) {
    sh('ip', ['netns', 'exec', c.ns, 'bash', '-c', `echo x > /dev/udp/127.0.0.1/${9000 + port}`]);
  }
  const p = spawn('ip', ['netns', 'exec', c.ns, 'sleep', '300'], { stdio: 'ignore' });
  procs.push(p);
  await new Promise((r) => setTimeout(r, 50));
  if (c.cgroup && intoCgroup) moveInto(c, p.pid!);
  return p.pid!;
}

function moveInto(c: Case, pid: number): void {
  if (c.cgroup) {
    mkdirSync(c.cgroup, { recursive: true });
    writeFileSync(join(c.cgroup, 'cgroup.procs'), String(pid));
    expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(c.cgroup.slice(c.cgroup.startsWith(V1) ? V1.length : V2.length));
  }
}

function writeFixtures(): void {
  const pods = join(root, 'var/log/pods');
  for (const [dir, containers] of [
    [`shop_web-7d9_${UID1}`, ['nginx', 'sidecar']],
    [`kube-system_coredns-5d78_${UID2}`, ['coredns']],
    [`tenant_${EVIL_POD}_${UID3}`, [EVIL_CONTAINER.slice(0, 200)]],
    [`shop_late-1_${UID4}`, ['app']],
  ] as const) {
    for (const c of containers) mkdirSync(join(pods, dir, c), { recursive: true });
  }
  mkdirSync(join(root, 'var/lib/docker/containers', cid(3)), { recursive: true });
  writeFileSync(join(root, 'var/lib/docker/containers', cid(3), 'config.v2.json'), JSON.stringify({ Name: '/cache', Config: { Labels: {} } }));
  const crio = join(root, 'run/containers/storage/overlay-containers', cid(4), 'userdata');
  mkdirSync(crio, { recursive: true });
  writeFileSync(join(crio, 'config.json'), JSON.stringify({ annotations: { 'io.kubernetes.container.name': 'queue', 'io.kubernetes.cri-o.ContainerType': 'container' } }));
}

const env = (): NodeJS.ProcessEnv => ({ CTOP_HOST_ROOT: root });
const inode = (c: Case): number => statSync(`/run/netns/${c.ns}`).ino;
let unnamedPid = 0;
let unnamedInode = 0;

describe('namespaces named by their owners', () => {
  beforeAll(async () => {
    // every ctop this file starts (runCli, startCli) looks for kubelet's and the runtimes' directories here
    process.env.CTOP_HOST_ROOT = root;
    // never take over shapes a real kubelet or runtime made on this machine
    for (const c of Object.values(cases)) if (c.top && existsSync(c.top)) throw new Error(`${c.top} exists already: not this test's to use`);
    writeFixtures();
    for (const c of Object.values(cases)) if (!c.late) await populate(c);
    // a namespace nobody named, holding a plain process: falls back to it
    unnamed = spawn('unshare', ['--net', 'sleep', '300'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 200));
    unnamedPid = unnamed.pid!;
    unnamedInode = statSync(`/proc/${unnamedPid}/ns/net`).ino;
  });

  afterAll(() => {
    delete process.env.CTOP_HOST_ROOT;
    killStrayClis();
    cleanup();
  });

  it('snapshot --json: an owner object per namespace, and names from it', () => {
    const r = runCli(['snapshot', '--json', '--duration', '1s', '--top', '0'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as SnapshotV1;
    const row = (i: number) => s.namespaces.find((n) => n.inode === i);
    for (const [k, c] of Object.entries(cases).filter(([, x]) => !x.late)) {
      const n = row(inode(c));
      expect(n?.owner, k).toEqual(c.want);
      if (c.label) expect(n?.name, k).toBe(c.label);
    }
    // the evil pod: the owner keeps the text as found (JSON escapes it); the name is cleaned and cut
    const evil = row(inode(cases.evilPod!))!;
    expect(evil.name).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
    expect(evil.name.startsWith('pod tenant/\\x1b]0;owned\\x07red\\x1b[31m')).toBe(true);
    expect(evil.name.length).toBeLessThanOrEqual(121);
    expect(row(unnamedInode)?.owner).toEqual({ kind: 'process', name: 'sleep', pid: unnamedPid });
    expect(row(unnamedInode)?.name).toBe(`pid ${unnamedPid} (sleep)`);
    // the host is the initial namespace (the kernel's fixed init_net inode since
    // 6.9; this machine runs 6.18), found although stat of /proc/1/ns/net is denied
    const host = s.namespaces.filter((n) => n.owner?.kind === 'host');
    expect(host.map((n) => [n.inode, n.name])).toEqual([[INIT_NET_INO, 'host']]);
  });

  it('run from inside another namespace, ctop still names the initial one host, and not its own', () => {
    const c = cases.plain!;
    const r = runCli(['snapshot', '--json', '--duration', '500ms'], { prefix: ['ip', 'netns', 'exec', c.ns], env: env() });
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as SnapshotV1;
    expect(s.namespaces.filter((n) => n.name === 'host').map((n) => n.inode)).toEqual([INIT_NET_INO]);
    expect(s.namespaces.find((n) => n.inode === inode(c))?.owner).toEqual(c.want);
  });

  it('without the kubelet tree the pods still show by UID, and nothing else changes', () => {
    const r = runCli(['snapshot', '--json', '--duration', '500ms'], { env: { CTOP_HOST_ROOT: join(root, 'nowhere') } });
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as SnapshotV1;
    expect(s.namespaces.find((n) => n.inode === inode(cases.podV1!))?.owner).toEqual({ kind: 'pod', name: UID1, uid: UID1, containers: [], id: cid(1) });
    expect(s.namespaces.find((n) => n.inode === inode(cases.docker!))?.owner).toEqual({ kind: 'container', name: cid(3).slice(0, 12), runtime: 'docker', id: cid(3), containers: [cid(3).slice(0, 12)] });
  });

  it('snapshot text on a terminal: hostile names escaped, one line each', () => {
    const r = runCli(['snapshot', '--duration', '500ms'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    expect(r.stdout).toContain('pod shop/web-7d9');
    expect(r.stdout).toContain('\\x1b]0;owned');
  });

  it('metrics: ctop_netns_info carries kind, pod and namespace, cleaned', async () => {
    const port = await freePort();
    const { proc } = await startCli(['serve', '--listen', `127.0.0.1:${port}`, '--every', '1s'], /serving metrics on/);
    try {
      let text = '';
      for (let i = 0; i < 50 && !text.includes('pod="web-7d9"'); i++) {
        await new Promise((r) => setTimeout(r, 200));
        text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      }
      expect(text).toContain(`ctop_netns_info{netns="${inode(cases.podV1!)}",name="pod shop/web-7d9",kind="pod",pod="web-7d9",namespace="shop"} 1`);
      expect(text).toContain(`ctop_netns_info{netns="${inode(cases.docker!)}",name="docker cache",kind="container",pod="",namespace=""} 1`);
      expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
      expect(text).toContain('pod="\\\\x1b]0;owned');
    } finally {
      proc.kill('SIGTERM');
    }
  });

  it('names follow pods as they come and go: a namespace becomes a pod, keeps its name while torn down, then its series ends', async () => {
    const c = cases.late!;
    const port = await freePort();
    const { proc } = await startCli(['serve', '--listen', `127.0.0.1:${port}`, '--every', '1s'], /serving metrics on/);
    const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const waitFor = async (test: (m: string) => boolean, what: string): Promise<string> => {
      let m = '';
      for (let i = 0; i < 60; i++) {
        m = await scrape();
        if (test(m)) return m;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`no ${what} in:\n${m.split('\n').filter((l) => l.startsWith('ctop_netns_info')).join('\n')}`);
    };
    try {
      // the namespace appears with a plain process: named by `ip netns`
      const pid = await populate(c, false);
      const ino = inode(c);
      await waitFor((m) => m.includes(`ctop_netns_info{netns="${ino}",name="${c.ns}",kind="netns",pod="",namespace=""} 1`), 'the new namespace');
      // its process joins a pod's cgroup: the next scan names it by the pod
      moveInto(c, pid);
      const line = `ctop_netns_info{netns="${ino}",name="pod shop/late-1",kind="pod",pod="late-1",namespace="shop"} 1`;
      const m = await waitFor((x) => x.includes(line), 'the pod name');
      expect(m).not.toContain(`name="${c.ns}"`); // the old name's series ended
      // the pod's processes go first; the namespace lingers (bind-mounted) and keeps the pod's name
      process.kill(pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 2500));
      expect(await scrape()).toContain(line);
      // then the namespace goes: its series ends
      sh('ip', ['netns', 'del', c.ns]);
      await waitFor((x) => !x.includes(`netns="${ino}"`), 'the end of its series');
    } finally {
      proc.kill('SIGTERM');
    }
  });

  it('census --json: the owner object too', () => {
    const r = runCli(['census', '--json', '--top', '3']);
    expect(r.code, r.stderr).toBe(0);
    const c = JSON.parse(r.stdout) as { namespaces: { inode: number; name: string; owner?: NetnsOwner }[] };
    const n = c.namespaces.find((x) => x.inode === inode(cases.podV2!));
    expect(n?.owner).toEqual(cases.podV2!.want);
    expect(n?.name).toBe(cases.podV2!.label);
  });

  it('a recording and its HTML report keep the names, escaped: never markup, never a terminal escape', () => {
    const rec = join(root, 'rec.jsonl');
    const html = join(root, 'report.html');
    const r = runCli(['record', '-o', rec, '--duration', '2s', '--every', '1s']);
    expect(r.code, r.stderr).toBe(0);
    const windows = readFileSync(rec, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { namespaces?: { inode: number; owner?: NetnsOwner }[] });
    const recorded = windows.flatMap((w) => w.namespaces ?? []).find((n) => n.inode === inode(cases.podV1!));
    expect(recorded?.owner).toEqual(cases.podV1!.want);
    const rep = runCli(['report', rec, '-o', html]);
    expect(rep.code, rep.stderr).toBe(0);
    const page = readFileSync(html, 'utf8');
    expect(page).toContain('pod shop/web-7d9');
    expect(page).not.toContain('<b onmouseover');
    expect(page).not.toMatch(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/);
  });

  it('the live screen: pods by name in the namespaces view, and the filter pod:NAME', async () => {
    const t = new Tmux();
    try {
      t.start(['top'], [120, 40]);
      await t.waitFor((x) => /LIVE/.test(x), 'the live screen');
      t.keys('Tab');
      t.keys('Tab');
      t.keys('Tab');
      const all = await t.waitFor((x) => /pod shop\/web-7d9/.test(x) && /docker cache/.test(x), 'the namespaces view with the pods');
      expect(all).toContain('pod kube-system/coredns');
      expect(all).toContain('cri-o queue');
      // the hostile pod: escaped, never interpreted (capture-pane shows what the terminal drew)
      expect(all).toContain('pod tenant/\\x1b]0;owned');
      // the Pods view: only pods, as namespace/name
      t.keys('Tab');
      const podsView = await t.waitFor((x) => /\[Pods\]/.test(x) && /shop\/web-7d9/.test(x), 'the Pods view');
      expect(podsView).toContain('kube-system/coredns-5d78');
      expect(podsView).not.toContain('docker cache');
      expect(podsView).not.toContain(cases.plain!.ns);
      t.keys('BTab');
      await t.waitFor((x) => /\[Namespaces\]/.test(x), 'back to the namespaces view');
      t.keys('/');
      t.keys('-l', 'pod:web');
      t.keys('Enter');
      const one = await t.waitFor((x) => /pod shop\/web-7d9/.test(x) && !/docker cache/.test(x), 'only the pod web-7d9');
      expect(one).not.toContain('coredns');
      t.keys('q');
      await t.waitFor((x) => /ctop-exit=0/.test(x), 'ctop to quit');
    } finally {
      t.destroy();
    }
  });
});
