/**
 * How a namespace's new conntrack entries came to be, as the kernel shows it
 * at the moment the entry is confirmed into the table. The role of a
 * (namespace, family, protocol, port) is read from these counts; it decides
 * which directions a NOTRACK exemption must cover.
 *
 *   server   the first packet came from another host (or namespace) and was
 *            delivered to a local socket: confirmed on LOCAL_IN
 *   client   the first packet was sent by a local socket to a peer outside
 *            the namespace: confirmed on POST_ROUTING, no input device, an
 *            output device that is not loopback
 *   local    both ends in this namespace (loopback, or an address of this
 *            host): confirmed on POST_ROUTING out of the loopback device
 *   forward  neither end local: received on one device and routed out,
 *            confirmed on POST_ROUTING with an input device
 *
 * `port` is always the destination port of the entry's original direction
 * (the service port for the first three and for forwarded requests).
 */
export const TRAFFIC_ROLES = ['server', 'client', 'local', 'forward'] as const;
export type TrafficRole = (typeof TRAFFIC_ROLES)[number];

/** What --role accepts: a role, or auto (each port's role read from its new entries). */
export type RoleChoice = TrafficRole | 'auto';
export const ROLE_CHOICES: readonly RoleChoice[] = ['auto', ...TRAFFIC_ROLES];

/** New entries per role; the four add up to the port's inserts in the BPF tiers. */
export type RoleCounts = Record<TrafficRole, number>;

export function zeroRoleCounts(): RoleCounts {
  return { server: 0, client: 0, local: 0, forward: 0 };
}
