import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
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
          // One file at a time: tests share the kernel and some lower the
          // global net.netfilter.nf_conntrack_max.
          fileParallelism: false,
          pool: 'forks',
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
