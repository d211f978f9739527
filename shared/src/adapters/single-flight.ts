/**
 * Calls for the same key made while one is in flight share it; a call after it settled makes a
 * new one. Reads that several ports make in the same tick (the ScaledObjects of a namespace, the
 * rules of a listener) then cost one request, and no answer outlives its tick.
 */
export class SingleFlight<T> {
  private readonly pending = new Map<string, Promise<T>>();

  run(key: string, call: () => Promise<T>): Promise<T> {
    let flight = this.pending.get(key);
    if (!flight) {
      flight = call().finally(() => this.pending.delete(key));
      this.pending.set(key, flight);
    }
    return flight;
  }
}
