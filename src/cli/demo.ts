import type { Services } from '../server/index.ts';

/** Demo seeding steps contributed by domains; each runs once on an empty store, in order. */
export type DemoSeeder = (services: Services, seeded: DemoSeed) => Promise<void>;

export interface DemoSeed {
  owner: { id: string; email: string };
  manager: { id: string; email: string };
  agents: { id: string; name: string }[];
  notes: string[];
}

/** Seeds an owner, their manager and agents, then whatever the other domains add. */
export async function seedDemo(services: Services, seeders: DemoSeeder[]): Promise<DemoSeed | undefined> {
  const existing = await services.identity.listHumans({ limit: 1 });
  if (existing.items.length > 0) return undefined;
  const actor = 'system:demo';
  const manager = await services.identity.createHuman({ email: 'bob@example.com', displayName: 'Bob Manager', department: 'eng' }, actor);
  const owner = await services.identity.createHuman({ email: 'alice@example.com', displayName: 'Alice Owner', department: 'eng', managerId: manager.id }, actor);
  const agents = [];
  for (const input of [
    { name: 'support-bot', purpose: 'answers customer tickets', modelProvider: 'anthropic', model: 'claude', tags: ['support'] },
    { name: 'release-agent', purpose: 'prepares releases', modelProvider: 'openai', model: 'gpt', tags: ['ci'] },
  ]) {
    const agent = await services.identity.createIdentity('agent', { ...input, ownerId: owner.id, environment: 'demo' }, actor);
    agents.push({ id: agent.id, name: agent.name });
  }
  await services.identity.createIdentity('workload', { name: 'nightly-etl', ownerId: manager.id, purpose: 'loads the warehouse', environment: 'demo' }, actor);
  const seeded: DemoSeed = { owner: { id: owner.id, email: owner.email }, manager: { id: manager.id, email: manager.email }, agents, notes: [] };
  for (const seeder of seeders) await seeder(services, seeded);
  return seeded;
}
