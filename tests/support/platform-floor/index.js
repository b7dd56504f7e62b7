// The platform's floor for the steps of edgemdm's request kinds (see wrangler.toml):
//   GET /            an HTTP request answered at once
//   GET /call?n=N    N calls, one after the other, to N different Durable Objects that answer
//                    at once
//   GET /rw?n=N      the same, each object reading one row and writing it back (about the size
//                    of a device's state row)
//   GET /d1          one D1 statement: a check-in time moved in a row with two indexes on it,
//                    as edgemdm's fleet index does after a check-in (POST /d1/setup first)
const ROW = 'x'.repeat(4096);

export class Floor {
  constructor(state) {
    this.storage = state.storage;
  }

  async fetch(request) {
    if (new URL(request.url).pathname === '/rw') {
      const row = (await this.storage.get('row')) ?? ROW;
      await this.storage.put('row', row);
    }
    return new Response('ok');
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const n = Math.min(Number(url.searchParams.get('n') ?? 1), 8);
    if (url.pathname === '/d1/setup') {
      await env.DB.batch([
        env.DB.prepare('CREATE TABLE IF NOT EXISTS devices (device_id TEXT PRIMARY KEY, status TEXT, last_checkin TEXT, version INTEGER)'),
        env.DB.prepare('CREATE INDEX IF NOT EXISTS devices_checkin ON devices (last_checkin)'),
        env.DB.prepare('CREATE INDEX IF NOT EXISTS devices_status_checkin ON devices (status, last_checkin)'),
        env.DB.prepare("INSERT OR IGNORE INTO devices VALUES ('device-1', 'enrolled', '', 0)"),
      ]);
    }
    if (url.pathname === '/d1') {
      const now = Date.now();
      await env.DB.prepare('UPDATE devices SET last_checkin = ?2, version = ?3 WHERE device_id = ?1 AND version <= ?3')
        .bind('device-1', new Date(now).toISOString(), now).run();
    }
    if (url.pathname === '/call' || url.pathname === '/rw') {
      for (let i = 0; i < n; i++) {
        const stub = env.OBJECTS.get(env.OBJECTS.idFromName(`object-${i}`));
        const answer = await stub.fetch(`https://object${url.pathname}`, { method: 'POST', body: '{}' });
        await answer.text();
      }
    }
    return new Response('ok', { headers: { 'content-type': 'text/plain' } });
  }
};
