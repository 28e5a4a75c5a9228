import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // One file at a time: kernel tests share the kernel and some lower the
    // global net.netfilter.nf_conntrack_max. vitest reads this option only
    // here, at the root: a project's own fileParallelism is ignored.
    fileParallelism: false,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'kernel',
          include: ['test/kernel/**/*.test.ts', 'test/lab/**/*.test.ts'],
          pool: 'forks',
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
