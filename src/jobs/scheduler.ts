import type { Logger } from 'pino';
import { releaseLease, tryLease, type Store } from '../store/index.ts';

export interface Job {
  /** Unique name; also the lease name. */
  name: string;
  everyMs: number;
  /** Must be idempotent: a replica that lost its lease mid-run may overlap once with the next holder. */
  run(): Promise<unknown>;
}

/**
 * Runs periodic jobs (orphan and inactivity detection, expiry of grants, certification deadlines) on
 * exactly one replica at a time: before each run the replica must hold the job's lease.
 */
export class Scheduler {
  readonly #store: Store;
  readonly #holder: string;
  readonly #logger: Logger;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #jobs: Job[] = [];
  #running = new Set<string>();

  constructor(store: Store, logger: Logger) {
    this.#store = store;
    this.#holder = store.origin;
    this.#logger = logger;
  }

  add(job: Job): void {
    this.#jobs.push(job);
  }

  start(): void {
    for (const job of this.#jobs) {
      const timer = setInterval(() => void this.runOnce(job.name), job.everyMs);
      timer.unref();
      this.#timers.push(timer);
    }
  }

  /** Runs a job now if this replica holds (or can take) its lease. Returns whether it ran. */
  async runOnce(name: string): Promise<boolean> {
    const job = this.#jobs.find((j) => j.name === name);
    if (!job || this.#running.has(name)) return false;
    this.#running.add(name);
    try {
      // The lease outlives one interval a little, so the holder keeps it from run to run.
      if (!(await tryLease(this.#store, `job:${name}`, this.#holder, job.everyMs + 30_000))) return false;
      await job.run();
      return true;
    } catch (error) {
      this.#logger.error({ err: error, job: name }, 'scheduled job failed');
      return false;
    } finally {
      this.#running.delete(name);
    }
  }

  async stop(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    for (const job of this.#jobs) await releaseLease(this.#store, `job:${job.name}`, this.#holder).catch((error: unknown) => this.#logger.warn({ err: error, job: job.name }, 'releasing a job lease failed; it expires on its own'));
  }
}
