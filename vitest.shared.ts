import { defineConfig } from 'vitest/config';

/**
 * Every package tests the same way. Timeouts only catch hangs: they are generous because tests must pass on a 2-core
 * machine while the other core is busy (a test never asserts on how long something took).
 */
export function packageTestConfig() {
  return defineConfig({
    // The effnet programs the tests start keep no compiled models in the user's cache (tests of the cache pass their own directory).
    // Two test files at once even on 2 cores (vitest's default leaves one core idle there): much of a file's time is
    // waiting on Python peers and child processes; tasks' suite took 112 s instead of 171 s.
    test: { include: ['src/**/*.test.ts', 'test/**/*.test.ts'], testTimeout: 900_000, hookTimeout: 900_000, passWithNoTests: false, maxWorkers: 2, env: { EFFNET_COMPILE_CACHE: '0' } },
  });
}
