import { afterEach, describe, expect, it } from 'vitest';
import { MandateError } from '../core/errors.ts';
import { BACKENDS, openTestStore } from '../../test/support/backends.ts';
import { ReplicatedView } from './replicated-view.ts';
import type { Store } from './store.ts';

const TOPIC = 'test.view.changed';

declare module './events.ts' {
  interface ChangeTopics {
    [TOPIC]: { key: string };
  }
}

/** The view's value: the mcp_settings table as a map, read from the real store. */
async function readAll(store: Store): Promise<Map<string, string>> {
  const rows = await store.db.selectFrom('mcp_settings').select(['key', 'value']).execute();
  return new Map(rows.map((row) => [row.key, row.value]));
}

async function put(store: Store, key: string, value: string): Promise<void> {
  await store.transaction(async (tx) => {
    await tx.db.deleteFrom('mcp_settings').where('key', '=', key).execute();
    await tx.db.insertInto('mcp_settings').values({ key, value, updated_at: new Date().toISOString() }).execute();
    tx.publish(TOPIC, { key });
  });
}

function expectUnavailable(view: { current(): unknown }): void {
  let caught: unknown;
  try {
    view.current();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(MandateError);
  expect((caught as MandateError).code).toBe('STORE_UNAVAILABLE');
}

describe.each(BACKENDS)('ReplicatedView (%s)', (backend) => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function open() {
    const opened = await openTestStore(backend, true);
    cleanups.push(() => opened.close());
    return opened.store;
  }

  function track<V>(view: ReplicatedView<V, typeof TOPIC>): ReplicatedView<V, typeof TOPIC> {
    cleanups.push(() => view.dispose());
    return view;
  }

  it('refuses before its first load, then loads and follows change events', async () => {
    const store = await open();
    let loads = 0;
    const view = track(new ReplicatedView({ name: 't', events: store.events, topics: [TOPIC], load: () => (loads++, readAll(store)) }));
    expectUnavailable(view);
    await view.reload();
    expect(view.current().size).toBe(0);
    await put(store, 'a', '1');
    expect(view.current().get('a')).toBe('1');
    expect(loads).toBe(2);
  });

  it('applies an event incrementally, and loads in full when apply asks for it', async () => {
    const store = await open();
    let loads = 0;
    const view = track(
      new ReplicatedView({
        name: 't',
        events: store.events,
        topics: [TOPIC],
        load: () => (loads++, readAll(store)),
        apply: async (current, event) => {
          if (event.data.key === 'full') return undefined;
          const row = await store.db.selectFrom('mcp_settings').select('value').where('key', '=', event.data.key).executeTakeFirst();
          return new Map(current).set(event.data.key, row?.value ?? '');
        },
      }),
    );
    await view.reload();
    await put(store, 'a', '1');
    expect(view.current().get('a')).toBe('1');
    expect(loads).toBe(1);
    await put(store, 'full', '2');
    expect(view.current().get('full')).toBe('2');
    expect(loads).toBe(2);
  });

  it('goes stale on a failed load, fails closed, and recovers after backoff and on resync', async () => {
    const store = await open();
    let failing = false;
    const view = track(
      new ReplicatedView({
        name: 't',
        events: store.events,
        topics: [TOPIC],
        load: async () => {
          if (failing) throw new Error('store away');
          return readAll(store);
        },
        initial: new Map<string, string>(),
      }),
    );
    await view.reload();
    failing = true;
    await put(store, 'a', '1');
    expect(view.stale).toBe(true);
    expectUnavailable(view);
    // The last good value stays readable for views that serve it deliberately.
    expect(view.last()?.has('a')).toBe(false);

    // Recovers by itself: the view's own retry (250 ms first) reloads once the store is back.
    failing = false;
    await expect.poll(() => view.stale, { timeout: 3_000, interval: 50 }).toBe(false);
    expect(view.current().get('a')).toBe('1');

    // And on a resync.
    failing = true;
    await expect(view.reload()).rejects.toThrow('store away');
    expectUnavailable(view);
    failing = false;
    await store.events.deliverAndWait({ topic: 'resync', data: {} });
    expect(view.current().get('a')).toBe('1');
  });

  it('tells its owner after the new value is in place, and applies its own writes in order with events', async () => {
    const store = await open();
    const seen: (string | undefined)[] = [];
    const view: ReplicatedView<Map<string, string>, typeof TOPIC> = track(
      new ReplicatedView({
        name: 't',
        events: store.events,
        topics: [TOPIC],
        load: () => readAll(store),
        apply: async (current, event) => {
          const row = await store.db.selectFrom('mcp_settings').select('value').where('key', '=', event.data.key).executeTakeFirst();
          return new Map(current).set(event.data.key, row?.value ?? '');
        },
        // Reads through the view: the value it is told about is already the current one.
        onUpdate: (value, event) => seen.push(event ? `${event.data.key}=${view.current().get(event.data.key)}` : `load:${value.size}`),
      }),
    );
    await view.reload();
    await put(store, 'a', '1');
    await view.refresh({ topic: TOPIC, data: { key: 'a' } });
    expect(seen).toEqual(['load:0', 'a=1', 'a=1']);
  });

  it('stops retrying once its store is closing', async () => {
    const store = await open();
    let loads = 0;
    const view = track(
      new ReplicatedView({
        name: 't',
        events: store.events,
        topics: [TOPIC],
        load: async () => {
          loads++;
          throw new Error('store away');
        },
      }),
    );
    store.events.close();
    await expect(view.reload()).rejects.toThrow('store away');
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(loads).toBe(1);
  });

  it('stops following changes once disposed', async () => {
    const store = await open();
    const view = new ReplicatedView({ name: 't', events: store.events, topics: [TOPIC], load: () => readAll(store) });
    await view.reload();
    view.dispose();
    await put(store, 'a', '1');
    await store.events.deliverAndWait({ topic: 'resync', data: {} });
    expect(view.current().has('a')).toBe(false);
  });

  it('never lets a slow load that started before an event overwrite the load that started after it', async () => {
    const store = await open();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    const view = track(
      new ReplicatedView({
        name: 't',
        events: store.events,
        topics: [TOPIC],
        load: async () => {
          const first = calls++ === 0;
          const value = await readAll(store);
          // The first load read the old state, then stalls past the change and its event.
          if (first) await gate;
          return value;
        },
      }),
    );
    const slow = view.reload();
    await expect.poll(() => calls).toBe(1);
    const changed = put(store, 'a', '1');
    // Events arriving while a load is queued join it rather than queueing more.
    const joined = view.reload();
    expect(view.reload()).toBe(joined);
    release();
    await Promise.all([slow, changed, joined]);
    expect(view.current().get('a')).toBe('1');
  });
});
