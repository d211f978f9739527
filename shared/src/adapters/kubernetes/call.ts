import { ApiException, Observable, type ConfigurationOptions, type ObservableMiddleware, type RequestContext } from '@kubernetes/client-node';
import type { CallOptions } from '../../reconcile/ports.ts';

/**
 * What every Kubernetes adapter needs around a call: the tick's abort signal on the request
 * (client-node 2.0 takes it only through a middleware), an optional Content-Type for patches,
 * and failures that say which object and what the apiserver answered.
 */

export function requestOptions(options: CallOptions = {}, contentType?: string): ConfigurationOptions | undefined {
  const middleware: ObservableMiddleware[] = [];
  const { signal } = options;
  if (signal) middleware.push(before((request) => request.setSignal(signal)));
  if (contentType) middleware.push(before((request) => request.setHeaderParam('Content-Type', contentType)));
  return middleware.length > 0 ? { middleware, middlewareMergeStrategy: 'append' } : undefined;
}

/** The object-parameter APIs take the generator's Observable middleware, not the Promise one. */
function before(change: (request: RequestContext) => void): ObservableMiddleware {
  return {
    pre: (request) => (change(request), new Observable(Promise.resolve(request))),
    post: (response) => new Observable(Promise.resolve(response)),
  };
}

export class KubernetesCallError extends Error {
  /** The HTTP status the apiserver answered, when it answered. */
  readonly code: number | undefined;

  constructor(what: string, cause: unknown) {
    const code = cause instanceof ApiException ? cause.code : undefined;
    super(`${what}: ${code !== undefined ? `HTTP ${code} ${statusMessage(cause)}` : (cause as Error).message}`, { cause });
    this.name = 'KubernetesCallError';
    this.code = code;
  }
}

/** Runs one Kubernetes call, naming `what` it was about when it fails. */
export async function kubeCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw new KubernetesCallError(what, error);
  }
}

function statusMessage(error: unknown): string {
  const body = (error as ApiException<unknown>).body;
  if (typeof body !== 'string') return '';
  try {
    return (JSON.parse(body) as { message?: string }).message ?? body.slice(0, 200);
  } catch {
    return body.slice(0, 200);
  }
}
