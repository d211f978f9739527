// `hwai twin` as anyone runs it: it starts a harness of its own (the same start-up the
// integration tests' global setup uses), runs the ticks asked for, prints progress on stderr and
// the agreement on stdout, and stops the harness.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { main } from '../../shared/src/cli/main.ts';

async function hwai(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let outText = '';
  let errText = '';
  out.on('data', (c: Buffer) => (outText += c.toString()));
  err.on('data', (c: Buffer) => (errText += c.toString()));
  const code = await main(argv, { out, err });
  return { code, out: outText, err: errText };
}

describe('hwai twin', () => {
  it('starts its own harness, runs the ticks asked for through the controller handler, and prints the agreement', async () => {
    const { code, out, err } = await hwai('twin', '--ticks', '12', '--policy', 'step');

    expect(code, err).toBe(0);
    expect(out).toContain('twin-inf2-shortage, policy step\nticks compared: 12, ticks equal: 12\nfirst difference: none\n');
    expect(out).toMatch(/12 ticks through the controller handler in [\d.]+ s: [\d.]+ s per tick/);
    expect(err).toContain('[twin] tick 10/12 (minute -21): sd21 cost; 10/10 equal to the in-process run');
  }, 600_000);

  it('refuses a tick count that is not a whole number >= 1 before starting anything', async () => {
    const { code, err } = await hwai('twin', '--ticks', '2.5');

    expect(code).toBe(1);
    expect(err).toContain(`option '--ticks <n>' argument '2.5' is invalid. expected a whole number of ticks >= 1, got "2.5"`);
    expect(err).not.toContain('[harness]');
  });
});
