/**
 * Versioned schema migrations, applied in order, each in its own transaction
 * (see migrate.ts). Never edit a migration that has shipped: add a new one.
 */

export interface Migration {
  version: number
  name: string
  sql: string
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'users, personal access tokens, audit events',
    sql: `
      CREATE TABLE users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        email text NOT NULL UNIQUE,
        name text,
        password_hash text,
        roles text[] NOT NULL DEFAULT '{}',
        disabled boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE personal_access_tokens (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        name text NOT NULL,
        token_hash text NOT NULL UNIQUE,
        mask text NOT NULL,
        permissions text[],
        expires_at timestamptz,
        last_used_at timestamptz,
        revoked_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX personal_access_tokens_user_id ON personal_access_tokens (user_id);

      -- No foreign key to users: the trail outlives the accounts it mentions.
      CREATE TABLE audit_events (
        id bigserial PRIMARY KEY,
        type text NOT NULL,
        user_id uuid,
        email text,
        ip text,
        details jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX audit_events_created_at ON audit_events (created_at);
      CREATE INDEX audit_events_user_id ON audit_events (user_id);
    `,
  },
  {
    version: 2,
    name: 'OpenID Connect identities linked to users',
    sql: `
      -- A provider identity is (issuer, subject), never the email, which the provider may
      -- reassign. One identity per issuer per user, so that linking is never ambiguous.
      CREATE TABLE user_identities (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        issuer text NOT NULL,
        subject text NOT NULL,
        user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        email text,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_login_at timestamptz,
        UNIQUE (issuer, subject),
        UNIQUE (user_id, issuer)
      );
    `,
  },
]
