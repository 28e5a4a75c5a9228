/**
 * deploy/kubernetes/ checked offline: every object validated against the
 * Kubernetes API schemas (kubernetes-models: the OpenAPI schemas of the
 * Kubernetes API, ServiceMonitor's from prometheus-operator's CRD), then what
 * the schemas cannot say: the DaemonSet runs `ctop serve` with the host's
 * network and PID namespaces and the capabilities ctop needs rather than
 * privileged, a read-only root and limits; the Service and ServiceMonitor find
 * it; the dashboard asks only for metrics ctop exports, per pod.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { ROOT } from '../support/cli.js';

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

const MODELS: Record<string, (o: Obj) => { validate(): void }> = {
  'v1/Namespace': (o) => new Namespace(o as never),
  'v1/ServiceAccount': (o) => new ServiceAccount(o as never),
  'v1/Service': (o) => new Service(o as never),
  'apps/v1/DaemonSet': (o) => new DaemonSet(o as never),
  'monitoring.coreos.com/v1/ServiceMonitor': (o) => new ServiceMonitor(o as never),
};

function validate(o: Obj): void {
  const make = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!make) throw new Error(`no schema for ${o.apiVersion} ${o.kind}`);
  make(o).validate();
}

const text = readFileSync(join(ROOT, 'deploy/kubernetes/ctop.yaml'), 'utf8');
const docs = parseAllDocuments(text);
const objs = docs.map((d) => d.toJS() as Obj).filter((o) => o !== null);
const find = <T = Obj>(kind: string): T => objs.find((o) => o.kind === kind) as T;

describe('deploy/kubernetes/ctop.yaml', () => {
  it('parses, and every object is valid against its API schema', () => {
    expect(docs.flatMap((d) => d.errors)).toEqual([]);
    expect(objs.map((o) => o.kind)).toEqual(['Namespace', 'ServiceAccount', 'DaemonSet', 'Service', 'ServiceMonitor']);
    for (const o of objs) expect(() => validate(o), `${o.kind} ${o.metadata.name}`).not.toThrow();
  });

  it('the validator does reject what the API would (so a pass means something)', () => {
    const ds = structuredClone(find('DaemonSet')) as Obj & { spec: { template: { spec: { containers: unknown[]; hostPID: unknown } } } };
    ds.spec.template.spec.hostPID = 'yes';
    expect(() => validate(ds)).toThrow(/hostPID must be boolean/);
    const ds2 = structuredClone(find('DaemonSet')) as Obj & { spec: { template: { spec: { containers: { resources: { limits: unknown } }[] } } } };
    ds2.spec.template.spec.containers[0]!.resources.limits = ['1'];
    expect(() => validate(ds2)).toThrow();
    const sm = structuredClone(find('ServiceMonitor')) as Obj & { spec: { endpoints: { interval: unknown }[] } };
    sm.spec.endpoints[0]!.interval = 15;
    expect(() => validate(sm)).toThrow();
    expect(() => validate({ apiVersion: 'v9', kind: 'Pod', metadata: { name: 'x' } })).toThrow(/no schema/);
  });

  type Container = {
    args: string[];
    env: { name: string; value: string }[];
    ports: { name: string; containerPort: number }[];
    resources: { requests: Record<string, string>; limits: Record<string, string> };
    securityContext: { privileged: boolean; readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean; capabilities: { add: string[]; drop: string[] } };
    volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
  };
  type PodSpec = { hostNetwork: boolean; hostPID: boolean; automountServiceAccountToken: boolean; containers: Container[]; volumes: { name: string; hostPath?: { path: string } }[] };
  const ds = find<{ spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } }>('DaemonSet');
  const pod = ds.spec.template.spec;
  const c = pod.containers[0]!;

  it('DaemonSet: host network and PID namespace, named capabilities instead of privileged, read-only root, limits', () => {
    expect(pod.hostNetwork).toBe(true);
    expect(pod.hostPID).toBe(true);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(c.args.slice(0, 3)).toEqual(['serve', '--listen', '0.0.0.0:9633']);
    expect(c.args).toContain('--allow-remote');
    expect(c.securityContext.privileged).toBe(false);
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(c.securityContext.capabilities.drop).toEqual(['ALL']);
    // what src/preflight.ts asks for, and what naming owners reads
    expect(c.securityContext.capabilities.add).toEqual(expect.arrayContaining(['BPF', 'PERFMON', 'NET_ADMIN', 'SYS_ADMIN']));
    for (const k of ['cpu', 'memory']) {
      expect(c.resources.requests[k]).toBeDefined();
      expect(c.resources.limits[k]).toBeDefined();
    }
    expect(ds.spec.selector.matchLabels).toEqual(expect.objectContaining({ 'app.kubernetes.io/name': 'ctop' }));
    for (const [k, v] of Object.entries(ds.spec.selector.matchLabels)) expect(ds.spec.template.metadata.labels[k]).toBe(v);
  });

  it('the owner directories are mounted read-only under CTOP_HOST_ROOT, every mount has its volume', () => {
    const root = c.env.find((e) => e.name === 'CTOP_HOST_ROOT')?.value;
    expect(root).toBe('/host');
    const mounts = new Map(c.volumeMounts.map((m) => [m.mountPath, m]));
    for (const dir of ['var/log/pods', 'run/containerd', 'run/containers', 'var/lib/docker/containers']) {
      const m = mounts.get(`${root}/${dir}`);
      expect(m?.readOnly, dir).toBe(true);
      expect(pod.volumes.find((v) => v.name === m!.name)?.hostPath?.path).toBe(`/${dir}`);
    }
    expect(mounts.get('/run/netns')?.readOnly).toBe(true);
    for (const m of c.volumeMounts) expect(pod.volumes.map((v) => v.name)).toContain(m.name);
    // the read-only root needs somewhere to write: only /tmp, an emptyDir
    expect(c.volumeMounts.filter((m) => !m.readOnly).map((m) => m.mountPath)).toEqual(['/tmp']);
  });

  it('the Service selects the pods and the ServiceMonitor the Service, by the port ctop listens on', () => {
    const svc = find<{ metadata: { labels: Record<string, string> }; spec: { selector: Record<string, string>; ports: { name: string; targetPort: string }[] } }>('Service');
    for (const [k, v] of Object.entries(svc.spec.selector)) expect(ds.spec.template.metadata.labels[k]).toBe(v);
    expect(c.ports.map((p) => p.name)).toContain(svc.spec.ports[0]!.targetPort);
    expect(c.ports[0]!.containerPort).toBe(9633);
    const sm = find<{ spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; relabelings: { action?: string; regex?: string }[] }[] } }>('ServiceMonitor');
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) expect(svc.metadata.labels[k]).toBe(v);
    expect(sm.spec.endpoints[0]!.port).toBe(svc.spec.ports[0]!.name);
    // ctop's own pod and namespace labels must not be renamed exported_* by the target's
    expect(sm.spec.endpoints[0]!.relabelings).toContainEqual({ action: 'labeldrop', regex: '(pod|namespace|container)' });
  });
});

describe('deploy/kubernetes/grafana-dashboard-pods.json', () => {
  const dash = JSON.parse(readFileSync(join(ROOT, 'deploy/kubernetes/grafana-dashboard-pods.json'), 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
    templating: { list: { name: string }[] };
  };
  const exporter = readFileSync(join(ROOT, 'src/serve/exporter.ts'), 'utf8');
  const exported = new Set([...exporter.matchAll(/name: '(ctop_[a-z_]+)'/g)].map((m) => m[1]!));

  it('asks only for metrics ctop exports, and each panel per pod', () => {
    expect(exported.has('ctop_netns_info')).toBe(true);
    expect(dash.templating.list.map((v) => v.name)).toEqual(['datasource', 'namespace', 'pod']);
    expect(dash.panels.length).toBeGreaterThanOrEqual(5);
    for (const p of dash.panels) {
      for (const t of p.targets) {
        for (const m of t.expr.match(/ctop_[a-z_]+/g) ?? []) expect(exported, `${p.title}: ${m}`).toContain(m);
        expect(t.expr, p.title).toMatch(/by \((?:node, )?namespace, pod\)/);
        expect(t.expr, p.title).toContain('group_left(namespace, pod) ctop_netns_info{kind="pod"');
      }
    }
  });
});
