// Node's `ws` echo server, the reference for bench/ws.sh (no compression, as tern's /ws
// without an offer). Usage: NODE_PATH=.deps/node/node_modules node bench/ws_node_echo.js PORT
const { WebSocketServer } = require('ws');
const port = Number(process.argv[2] || 9001);
const wss = new WebSocketServer({ port, host: '127.0.0.1', perMessageDeflate: false, maxPayload: 16 << 20 });
wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
wss.on('listening', () => console.log(`listening on ${port}`));
