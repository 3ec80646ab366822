/**
 * The machines' side effects, implemented for real sockets. Each machine is
 * provided once per runtime; a connection actor finds its connection by id.
 */
import { connectionMachine, type ConnectionLeavingEvent, type ConnectionMachine } from '../../machines/connection.machine.js';
import { supervisorMachine } from '../../machines/supervisor.machine.js';
import type { DeliveryPort, Target } from '../../machines/types.js';
import type { ServerConnection } from './connection.js';

export type SupervisorMachine = typeof supervisorMachine;

const none: readonly DeliveryPort[] = Object.freeze([]);

export function provideConnectionMachine(
  lookup: (id: string) => ServerConnection<unknown> | undefined,
  supervisor: { send(event: ConnectionLeavingEvent): void },
): ConnectionMachine {
  return connectionMachine.provide({
    actions: {
      notifySupervisor: ({ context }) => supervisor.send({ type: 'connection.leaving', id: context.id }),
      closeSocket: ({ context }, { code, reason }) => lookup(context.id)?.closeSocket(code, reason),
      terminateSocket: ({ context }) => lookup(context.id)?.terminateSocket(),
      markLeaving: ({ context }) => lookup(context.id)?.markLeaving(),
      reportClosed: ({ context }, output) => lookup(context.id)?.markClosed(output),
    },
  });
}

/** A supervisor whose broadcasts write into the recipients' outboxes. */
export function provideSupervisorMachine(hooks: {
  sessionExpired(): void;
  /** Called before a broadcast's frame is written into its recipients' outboxes: true if they are to be written at once. */
  broadcasting(target: Target): boolean;
  /** Called once they are, with how many recipients, if `broadcasting` said so. */
  broadcasted(recipients: number): void;
  /** A recipient's delivery threw (a bug): the others still get the broadcast. */
  deliveryFailed(error: unknown): void;
}): SupervisorMachine {
  return supervisorMachine.provide({
    actions: {
      reportExpired: () => hooks.sessionExpired(),
      deliver: ({ context }, { target, except, frame, delivered, envelopedOnly }) => {
        const atOnce = hooks.broadcasting(target);
        let enveloped: DeliveryPort[] | undefined;
        const recipients = context.directory.forEachRecipient(target, except, ({ port }) => {
          // Enveloped recipients share one frame of their own, built once they are known.
          if (port.enveloped === true) (enveloped ??= []).push(port);
          else if (envelopedOnly !== true) {
            try {
              port.deliver(frame);
            } catch (error) {
              hooks.deliveryFailed(error);
            }
          }
        });
        delivered?.(recipients, enveloped ?? none);
        if (atOnce) hooks.broadcasted(recipients);
      },
    },
  });
}
