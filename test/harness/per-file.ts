// Runs before every integration test file: each file starts from an empty harness.
import { beforeAll } from 'vitest';
import { resetHarness } from './clients.ts';

beforeAll(resetHarness);
