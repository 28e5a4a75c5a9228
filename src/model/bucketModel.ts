/**
 * The expected chain lengths when only the entry count is known (the live
 * screen; the census measures them when it walks the hash): under a uniform hash,
 * the number of chain nodes in one bucket is Poisson-distributed with
 * lambda = nodes / buckets, so the expected number of buckets holding k
 * nodes is P(k) * buckets. Conntrack hashes every entry twice (original and
 * reply tuple): nodes = 2 x entries. Pure: no I/O.
 */

export interface BucketModel {
  /** "model": computed from the count, not measured (the census reports measured chains). */
  kind: 'model';
  lambda: number;
  /** Load factor: chain nodes per bucket (equals lambda under this model). */
  loadFactor: number;
  buckets: number;
  /** Expected bucket counts for chain length 0..maxK-1, and the last slot for maxK or more. */
  histogram: { k: number; orMore: boolean; buckets: number }[];
  /** Expected length of the chain a lookup walks (for an entry present): 1 + lambda. */
  meanHitChain: number;
}

/** Chain lengths 0..7 and "8 or more": one row per length an operator acts on, the long tail in one. */
export const MAX_K = 8;

/** P(k) = e^-λ λ^k / k! for k = 0, 1, ..., built iteratively so a large λ does not overflow k!. */
function* poisson(lambda: number): Generator<number> {
  let p = Math.exp(-lambda);
  for (let k = 0; ; k++) {
    yield p;
    p = (p * lambda) / (k + 1);
  }
}

export function bucketModel(nodes: number, buckets: number, maxK = MAX_K): BucketModel {
  const lambda = buckets > 0 ? Math.max(0, nodes) / buckets : 0;
  const histogram: BucketModel['histogram'] = [];
  let below = 0;
  let k = 0;
  for (const p of poisson(lambda)) {
    if (k === maxK) break;
    histogram.push({ k, orMore: false, buckets: p * buckets });
    below += p;
    k++;
  }
  // The tail is what is left, never negative through rounding.
  histogram.push({ k: maxK, orMore: true, buckets: Math.max(0, 1 - below) * buckets });
  return { kind: 'model', lambda, loadFactor: lambda, buckets, histogram, meanHitChain: 1 + lambda };
}

/** The longest chain at least one bucket is expected to reach: the largest k with buckets x P(X >= k) >= 1. */
export function modelLongestChain(nodes: number, buckets: number): number {
  if (buckets <= 0 || nodes <= 0) return 0;
  let below = 0; // P(X <= k)
  let k = 0;
  for (const p of poisson(nodes / buckets)) {
    below += p;
    if ((1 - below) * buckets < 1 || k >= 10_000) break;
    k++;
  }
  return k;
}

/** The label the panel shows, so nobody mistakes the model for a measurement. */
export function bucketModelLabel(m: BucketModel): string {
  return `model (uniform hash, Poisson λ=${m.lambda < 10 ? m.lambda.toFixed(2) : m.lambda.toFixed(1)})`;
}
