// The engine's sandboxed frame only wires: it takes its end of the link from the offscreen document that framed it,
// once, serves the captioner on it (engine-server.ts), and hands on its heartbeat (heartbeat.ts). See
// src/shared/engine-link.ts for why it is a frame.
import { CONNECT } from '../shared/engine-link';
import { EngineServer } from './engine-server';
import { startHeartbeat } from './heartbeat';

addEventListener('message', function connect(e: MessageEvent) {
  const data = e.data as { type?: unknown } | null;
  if (e.source !== parent || data?.type !== CONNECT || !e.ports[0]) return;
  removeEventListener('message', connect);
  const server = new EngineServer(e.ports[0]);
  server.start();
  void startHeartbeat().then((heartbeat) => heartbeat && server.offerHeartbeat(heartbeat));
});
