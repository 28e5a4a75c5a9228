/** The --role option advise, notrack apply and validate share. */
import { Option } from 'commander';
import { ROLE_CHOICES } from '../advise/rules.js';

export const ROLE_HELP =
  'auto: the role the kernel shows for each port (measured); server: a local service on PORT; client: local sockets talk to a remote PORT; local: both ends in this namespace; forward: routed or bridged through it';

export function roleOption(): Option {
  return new Option('--role <role>', ROLE_HELP).choices([...ROLE_CHOICES]).default('auto');
}
