// The HTTP front end, for those who serve the gate from their own process (`@gate/gate/server`).
export { createServer, type ServerOptions } from './app.js';
export { closeGracefully } from './shutdown.js';
