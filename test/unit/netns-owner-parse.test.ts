import { describe, expect, it } from 'vitest';
import { parseCgroupFile, parseCgroupPath, parseDockerConfig, parseOciConfig, parsePodLogDir } from '../../src/source/netnsOwnerParse.js';
import { ownerLabel } from '../../src/model/owner.js';

const UID = '8f3c2a1e-4b5d-4e6f-9a7b-0c1d2e3f4a5b';
const CID = 'a'.repeat(40) + '0123456789abcdef01234567';

describe('parseCgroupPath: the shapes kubelet and the runtimes make', () => {
  it.each([
    // kubelet, cgroupfs driver (v1 and v2 paths look alike)
    [`/kubepods/burstable/pod${UID}/${CID}`, { podUid: UID, containerId: CID }],
    [`/kubepods/besteffort/pod${UID}/${CID}`, { podUid: UID, containerId: CID }],
    [`/kubepods/pod${UID}/${CID}`, { podUid: UID, containerId: CID }],
    // kubelet, systemd driver: '-' in the UID written as '_'
    [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${CID}.scope`, { podUid: UID, containerId: CID, runtime: 'containerd' }],
    [`/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID.replace(/-/g, '_')}.slice/crio-${CID}.scope`, { podUid: UID, containerId: CID, runtime: 'cri-o' }],
    [`/kubepods.slice/kubepods-pod${UID.replace(/-/g, '_')}.slice/docker-${CID}.scope`, { podUid: UID, containerId: CID, runtime: 'docker' }],
    // a pod's cgroup without a container below it (the pod level itself)
    [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice`, { podUid: UID }],
    // runtimes without Kubernetes
    [`/docker/${CID}`, { containerId: CID, runtime: 'docker' }],
    [`/system.slice/docker-${CID}.scope`, { containerId: CID, runtime: 'docker' }],
    [`/machine.slice/libpod-${CID}.scope`, { containerId: CID, runtime: 'podman' }],
    [`/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${CID}.scope`, { containerId: CID, runtime: 'podman' }],
    [`/default/${CID}`, { containerId: CID, runtime: 'containerd' }],
    [`/system.slice/nerdctl-${CID}.scope`, { containerId: CID, runtime: 'containerd' }],
    // systemd units, and nothing
    ['/system.slice/systemd-resolved.service', { unit: 'systemd-resolved.service' }],
    ['/user.slice/user-0.slice/session-3.scope', {}],
    ['/', {}],
    [`/process_api/${'a7e0ffe049affb099c778e6ca2c61f53'}`, {}],
  ])('%s', (path, want) => {
    expect(parseCgroupPath(path)).toEqual(want);
  });

  it('a pod-like name outside kubepods is no pod', () => {
    expect(parseCgroupPath(`/mystuff/pod${UID}`)).toEqual({});
  });
});

describe('parseCgroupFile', () => {
  it('v1: the hierarchy that places the process in a pod wins over the others', () => {
    const text = [
      '12:pids:/kubepods/burstable/pod' + UID + '/' + CID,
      '4:memory:/process_api/abc',
      '1:name=systemd:/system.slice/containerd.service',
      '0::/',
      '',
    ].join('\n');
    expect(parseCgroupFile(text)).toEqual({ podUid: UID, containerId: CID });
  });

  it('v2 only, systemd driver', () => {
    expect(parseCgroupFile(`0::/kubepods.slice/kubepods-pod${UID.replace(/-/g, '_')}.slice/crio-${CID}.scope\n`)).toEqual({ podUid: UID, containerId: CID, runtime: 'cri-o' });
  });

  it('a path holding ":" and junk lines', () => {
    expect(parseCgroupFile('garbage\n0::/system.slice/a:b.service\n')).toEqual({ unit: 'a:b.service' });
  });
});

describe('parsePodLogDir', () => {
  it('namespace_name_uid', () => {
    expect(parsePodLogDir(`kube-system_coredns-5d78c9869d-x7k2p_${UID}`)).toEqual({ namespace: 'kube-system', name: 'coredns-5d78c9869d-x7k2p', uid: UID });
  });
  it('anything else is not a pod directory', () => {
    expect(parsePodLogDir('kube-system_coredns')).toBeUndefined();
    expect(parsePodLogDir(`a_b_c_${UID}`)).toBeUndefined();
    expect(parsePodLogDir(`a_b_${UID}x`)).toBeUndefined();
  });
});

describe('runtime configs', () => {
  it('containerd OCI config: the CRI annotations', () => {
    const json = JSON.stringify({
      ociVersion: '1.0.2',
      annotations: {
        'io.kubernetes.cri.container-type': 'container',
        'io.kubernetes.cri.container-name': 'nginx',
        'io.kubernetes.cri.sandbox-name': 'web-7d9',
        'io.kubernetes.cri.sandbox-namespace': 'shop',
        'io.kubernetes.cri.sandbox-uid': UID,
      },
    });
    expect(parseOciConfig(json)).toEqual({ name: 'nginx', podName: 'web-7d9', podNamespace: 'shop', podUid: UID });
  });
  it('containerd sandbox and CRI-O annotations', () => {
    expect(parseOciConfig(JSON.stringify({ annotations: { 'io.kubernetes.cri.container-type': 'sandbox', 'io.kubernetes.cri.sandbox-name': 'p' } }))).toEqual({ podName: 'p', sandbox: true });
    expect(
      parseOciConfig(JSON.stringify({ annotations: { 'io.kubernetes.container.name': 'app', 'io.kubernetes.pod.name': 'p', 'io.kubernetes.pod.namespace': 'n', 'io.kubernetes.pod.uid': UID, 'io.kubernetes.cri-o.ContainerType': 'container' } })),
    ).toEqual({ name: 'app', podName: 'p', podNamespace: 'n', podUid: UID });
  });
  it('docker config.v2.json: the name without its slash; junk gives nothing', () => {
    expect(parseDockerConfig(JSON.stringify({ Name: '/cache', Config: { Labels: {} } }))).toEqual({ name: 'cache' });
    expect(parseDockerConfig('{')).toEqual({});
    expect(parseOciConfig('not json')).toEqual({});
  });
  it('very long names are cut at 253 characters', () => {
    expect(parseDockerConfig(JSON.stringify({ Name: `/${'x'.repeat(1000)}` })).name).toHaveLength(253);
  });
});

describe('ownerLabel', () => {
  it('one line per kind', () => {
    expect(ownerLabel({ kind: 'pod', name: 'web-7d9', namespace: 'shop', uid: UID, containers: ['nginx'] })).toBe('pod shop/web-7d9');
    expect(ownerLabel({ kind: 'container', name: 'cache', runtime: 'docker', id: CID })).toBe('docker cache');
    expect(ownerLabel({ kind: 'systemd', name: 'x.service' })).toBe('x.service');
    expect(ownerLabel({ kind: 'process', name: 'nginx', pid: 4711 })).toBe('pid 4711 (nginx)');
    expect(ownerLabel({ kind: 'host', name: 'host' })).toBe('host');
  });
});

describe('the live screen filter pod:NAME', () => {
  const row = (nsName: string) => ({ nsInode: 1, nsName });
  it('matches a pod by namespace/name, and nothing that is not a pod', async () => {
    const { parseFilter, matches } = await import('../../src/tui/filter.js');
    expect(matches(parseFilter('pod:web'), row('pod shop/web-7d9'))).toBe(true);
    expect(matches(parseFilter('pod:shop/'), row('pod shop/web-7d9'))).toBe(true);
    expect(matches(parseFilter('pod:WEB'), row('pod shop/web-7d9'))).toBe(true);
    expect(matches(parseFilter('pod:api'), row('pod shop/web-7d9'))).toBe(false);
    expect(matches(parseFilter('pod:web'), row('docker web'))).toBe(false);
    expect(matches(parseFilter('pod:web'), row('web-netns'))).toBe(false);
  });
});
