import { Command } from 'commander';
import { apiTarget, callApi } from '../http-client.ts';
import { print } from '../output.ts';
import { remote, type RemoteOptions } from '../remote.ts';


export function humanCommand(): Command {
  const human = new Command('human').description('manage humans (owners of agents)');
  remote(human.command('create').description('create a human').requiredOption('--email <email>').requiredOption('--name <displayName>').option('--department <department>').option('--manager <humanId>')).action(async (o: RemoteOptions & { email: string; name: string; department?: string; manager?: string }) => {
    const created = await callApi(apiTarget(o), 'POST', '/api/v1/humans', { email: o.email, displayName: o.name, ...(o.department && { department: o.department }), ...(o.manager && { managerId: o.manager }) });
    print(created, o.json, ['id', 'email', 'displayName', 'status']);
  });
  remote(human.command('list').description('list humans').option('--email <email>')).action(async (o: RemoteOptions & { email?: string }) => {
    const page = (await callApi(apiTarget(o), 'GET', `/api/v1/humans${o.email ? `?email=${encodeURIComponent(o.email)}` : ''}`)) as { items: unknown[] };
    print(page.items, o.json, ['id', 'email', 'displayName', 'status']);
  });
  remote(human.command('show').description('show a human').argument('<id>')).action(async (id: string, o: RemoteOptions) => {
    print(await callApi(apiTarget(o), 'GET', `/api/v1/humans/${encodeURIComponent(id)}`), o.json);
  });
  remote(human.command('offboard').description('leaver: deactivate and suspend owned agents').argument('<id>').option('--transfer-to <humanId>')).action(async (id: string, o: RemoteOptions & { transferTo?: string }) => {
    print(await callApi(apiTarget(o), 'POST', `/api/v1/humans/${encodeURIComponent(id)}/offboard`, o.transferTo ? { transferTo: o.transferTo } : {}), o.json);
  });
  return human;
}

export function agentCommand(): Command {
  const agent = new Command('agent').description('manage agents');
  remote(agent.command('create').description('register an agent').requiredOption('--name <name>').requiredOption('--owner <humanId>').option('--purpose <text>').option('--model <model>').option('--provider <provider>').option('--tag <tag...>')).action(async (o: RemoteOptions & { name: string; owner: string; purpose?: string; model?: string; provider?: string; tag?: string[] }) => {
    const created = await callApi(apiTarget(o), 'POST', '/api/v1/agents', {
      name: o.name,
      ownerId: o.owner,
      ...(o.purpose && { purpose: o.purpose }),
      ...(o.model && { model: o.model }),
      ...(o.provider && { modelProvider: o.provider }),
      ...(o.tag && { tags: o.tag }),
    });
    print(created, o.json, ['id', 'name', 'ownerId', 'status']);
  });
  remote(agent.command('list').description('list agents').option('--owner <humanId>').option('--status <status>')).action(async (o: RemoteOptions & { owner?: string; status?: string }) => {
    const query = new URLSearchParams({ ...(o.owner && { ownerId: o.owner }), ...(o.status && { status: o.status }) });
    const page = (await callApi(apiTarget(o), 'GET', `/api/v1/agents?${query}`)) as { items: unknown[] };
    print(page.items, o.json, ['id', 'name', 'ownerId', 'status']);
  });
  remote(agent.command('show').description('show an agent').argument('<id>')).action(async (id: string, o: RemoteOptions) => {
    print(await callApi(apiTarget(o), 'GET', `/api/v1/agents/${encodeURIComponent(id)}`), o.json);
  });
  for (const verb of ['suspend', 'resume', 'decommission']) {
    remote(agent.command(verb).description(`${verb} an agent`).argument('<id>').option('--reason <text>')).action(async (id: string, o: RemoteOptions & { reason?: string }) => {
      print(await callApi(apiTarget(o), 'POST', `/api/v1/agents/${encodeURIComponent(id)}/${verb}`, o.reason ? { reason: o.reason } : {}), o.json, ['id', 'name', 'status']);
    });
  }
  return agent;
}
