/** The event bus: its interface and the backends configuration can choose. */
export type {
  BatchSubscribeOptions,
  EventBus,
  EventMessage,
  SubscribeOptions,
  Subscription,
} from './event-bus.js';
export { createMemoryEventBus, MemoryEventBus, type MemoryEventBusOptions } from './memory.js';
export { openNatsEventBus, NatsEventBus, type NatsEventBusOptions } from './nats.js';
