/**
 * Application service registrations, loaded as Synapse loads
 * `app_service_config_files`: one YAML file per appservice, validated with zod,
 * every problem a `ConfigError` whose path names the file and the key.
 *
 * Only what presence delivery needs is interpreted (`id`, `url`, `as_token`,
 * `hs_token`, `sender_localpart`, `namespaces.users`, the ephemeral flags and
 * our `presence` extension); other keys of a Synapse registration are accepted
 * and ignored.
 */
import { readFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { configErrorFromZod } from '../config.js';
import { ConfigError } from '../errors.js';
import { UserIdSchema, type UserId } from '../domain/ids.js';

/** A regex as Synapse takes it: matched from the start of the user id. */
const RegexSchema = z.string().superRefine((source, ctx) => {
  try {
    new RegExp(source);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `not a valid regular expression: ${(error as Error).message}` });
  }
});

const NamespaceSchema = z.looseObject({
  regex: RegexSchema,
  exclusive: z.boolean().default(false),
});

/** Our extension: users whose presence the appservice also wants, beyond rooms and routers. */
const PresenceExtensionSchema = z.strictObject({
  /** Exact user ids (local or remote). */
  users: z.array(UserIdSchema).default([]),
  /** Regexes over user ids. */
  user_regexes: z.array(RegexSchema).default([]),
  /** Every user's presence. */
  all_users: z.boolean().default(false),
});

export const AppserviceRegistrationSchema = z.looseObject({
  id: z.string().min(1, 'give the appservice an id'),
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. http://127.0.0.1:9000' }).nullable(),
  as_token: z.string().min(1, 'as_token must not be empty'),
  hs_token: z.string().min(1, 'hs_token must not be empty'),
  sender_localpart: z.string().min(1, 'sender_localpart must not be empty'),
  namespaces: z
    .looseObject({
      users: z.array(NamespaceSchema).default([]),
      aliases: z.array(z.unknown()).default([]),
      rooms: z.array(z.unknown()).default([]),
    })
    .default({ users: [], aliases: [], rooms: [] }),
  rate_limited: z.boolean().optional(),
  protocols: z.array(z.string()).optional(),
  /** MSC2409 (stable): send ephemeral events under `ephemeral`. */
  receive_ephemeral: z.boolean().default(false),
  /** MSC2409 (unstable): send ephemeral events under `de.sorunome.msc2409.ephemeral`. */
  'de.sorunome.msc2409.push_ephemeral': z.boolean().default(false),
  presence: PresenceExtensionSchema.optional(),
});

export type AppserviceRegistrationInput = z.input<typeof AppserviceRegistrationSchema>;

/** Which transaction keys carry ephemeral events. */
export interface EphemeralKeys {
  readonly stable: boolean;
  readonly unstable: boolean;
}

/** A validated registration, in the shape delivery uses. */
export interface AppserviceRegistration {
  readonly id: string;
  /** Base URL (no trailing slash); null when the appservice takes no transactions. */
  readonly url: string | null;
  readonly asToken: string;
  readonly hsToken: string;
  /** `@{sender_localpart}:{server_name}`: always in the appservice's namespace. */
  readonly sender: UserId;
  readonly userNamespaces: readonly { readonly regex: RegExp; readonly exclusive: boolean }[];
  readonly ephemeral: EphemeralKeys;
  readonly presence: { readonly users: ReadonlySet<UserId>; readonly userRegexes: readonly RegExp[]; readonly allUsers: boolean };
  /** Where it was read from, for messages. */
  readonly source: string;
}

/** Matched from the start of the user id, as Synapse's `re.match` (not anchored at the end). */
function anchored(source: string): RegExp {
  return new RegExp(`^(?:${source})`);
}

/**
 * Validate one registration object. `source` names it in errors (the
 * config path, e.g. `app_service_config_files[0]`).
 * @throws ConfigError
 */
export function parseAppserviceRegistration(raw: unknown, serverName: string, source: string): AppserviceRegistration {
  const r = AppserviceRegistrationSchema.safeParse(raw);
  if (!r.success) {
    const e = configErrorFromZod(r.error, 'see docs/appservices.md');
    throw new ConfigError(e.path === '' ? source : `${source}.${e.path}`, e.message.replace(/^config error at \S+: /, ''));
  }
  const c = r.data;
  const sender = `@${c.sender_localpart}:${serverName}`;
  const parsedSender = UserIdSchema.safeParse(sender);
  if (!parsedSender.success) throw new ConfigError(`${source}.sender_localpart`, `${sender} is not a valid user id`);
  const ext = c.presence;
  return {
    id: c.id,
    url: c.url === null ? null : c.url.replace(/\/+$/, ''),
    asToken: c.as_token,
    hsToken: c.hs_token,
    sender: parsedSender.data,
    userNamespaces: c.namespaces.users.map((n) => ({ regex: anchored(n.regex), exclusive: n.exclusive })),
    ephemeral: { stable: c.receive_ephemeral, unstable: c['de.sorunome.msc2409.push_ephemeral'] },
    presence: {
      users: new Set(ext?.users ?? []),
      userRegexes: (ext?.user_regexes ?? []).map(anchored),
      allUsers: ext?.all_users ?? false,
    },
    source,
  };
}

/**
 * Read every file of `app_service_config_files` (paths relative to `baseDir`)
 * and check that ids, tokens and exclusive namespaces do not collide.
 * @throws ConfigError naming `app_service_config_files[i]` and the key
 */
export async function loadAppserviceRegistrations(files: readonly string[], serverName: string, baseDir: string): Promise<AppserviceRegistration[]> {
  const out: AppserviceRegistration[] = [];
  for (const [i, file] of files.entries()) {
    const source = `app_service_config_files[${i}]`;
    const path = resolvePath(baseDir, file);
    let raw: unknown;
    try {
      raw = parseYaml(await readFile(path, 'utf8'));
    } catch (error) {
      throw new ConfigError(source, `cannot read the registration ${path}: ${(error as Error).message}`, { cause: error });
    }
    out.push(parseAppserviceRegistration(raw, serverName, source));
  }
  checkDistinct(out);
  return out;
}

/** Synapse refuses duplicate ids and tokens; so do we, naming the second. */
export function checkDistinct(registrations: readonly AppserviceRegistration[]): void {
  const ids = new Set<string>();
  const tokens = new Set<string>();
  for (const r of registrations) {
    if (ids.has(r.id)) throw new ConfigError(`${r.source}.id`, `the id ${r.id} is used by another registration`);
    ids.add(r.id);
    if (tokens.has(r.asToken)) throw new ConfigError(`${r.source}.as_token`, 'as_token is used by another registration');
    tokens.add(r.asToken);
  }
}
