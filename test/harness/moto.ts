// moto in server mode (from .venv, see tools/harness/moto): every AWS service on one loopback port.
import { join } from 'node:path';
import { freePort, startProcess, step, waitUntil } from './processes.ts';

export interface Moto {
  readonly url: string;
  stop(): Promise<void>;
}

export async function startMoto(motoServer: string, workDir: string): Promise<Moto> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const moto = startProcess('moto', motoServer, ['-H', '127.0.0.1', '-p', String(port)], join(workDir, 'moto.log'));
  try {
    await step('starting moto', () => waitUntil(moto, 'moto /moto-api/', async () => (await fetch(`${url}/moto-api/data.json`)).ok, 60_000));
  } catch (error) {
    await moto.stop();
    throw error;
  }
  return { url, stop: () => moto.stop() };
}

/** Forgets every AWS resource moto holds (between test files). */
export async function resetMoto(url: string): Promise<void> {
  const res = await fetch(`${url}/moto-api/reset`, { method: 'POST' });
  if (!res.ok) throw new Error(`moto reset failed: ${res.status} ${await res.text()}`);
}
