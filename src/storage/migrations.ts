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
  {
    version: 3,
    name: 'password reset and email verification tokens, users.email_verified',
    sql: `
      -- Accounts that predate verification were accepted under the rules of their time:
      -- turning email_verification on must not lock them (the first admin included) out.
      ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false;
      UPDATE users SET email_verified = true;

      -- Single-use links sent by email. Only the SHA-256 of a token is kept; a used or expired
      -- row stays until its user's next token is issued, so that a replay is told apart from
      -- a forgery in the audit trail.
      CREATE TABLE account_tokens (
        token_hash text PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        purpose text NOT NULL CHECK (purpose IN ('password_reset', 'email_verification')),
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX account_tokens_user_id ON account_tokens (user_id, purpose);
    `,
  },
  {
    version: 4,
    name: 'second factors: TOTP secrets, recovery codes, PATs created with a second factor',
    sql: `
      -- One authenticator app per user. The secret is sealed with the data key ring
      -- (core/data-keys.ts: gh1.<key id>.<iv>.<ciphertext>), bound to its user; key_id repeats
      -- the key id for rotations. confirmed_at null: enrolment started, not yet confirmed.
      -- last_used_step is the 30 s step of the last code accepted: a code is accepted once,
      -- on every replica, by moving it forward in one conditional UPDATE.
      CREATE TABLE user_totp (
        user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
        secret_sealed text NOT NULL,
        key_id text NOT NULL,
        confirmed_at timestamptz,
        last_used_step bigint,
        created_at timestamptz NOT NULL DEFAULT now()
      );

      -- Ten single-use codes per user, only their SHA-256 kept; used_at set when spent.
      CREATE TABLE recovery_codes (
        user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        code_hash text NOT NULL,
        used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (user_id, code_hash)
      );

      -- A PAT satisfies a route's mfa: required only when its creating session had a second factor.
      ALTER TABLE personal_access_tokens ADD COLUMN second_factor boolean NOT NULL DEFAULT false;
    `,
  },
  {
    version: 5,
    name: 'user secrets injected into one route\'s upstream',
    sql: `
      -- One secret per user and route, sealed with the data key ring (AES-256-GCM): the
      -- ciphertext is bound to (user, route, upstream), so a row copied to another user or
      -- route, or left behind by a changed upstream, does not open there. key_id is the data
      -- key that sealed it (also inside the ciphertext), to see what a rotation left behind.
      -- upstream_fingerprint is the SHA-256 of the route's upstream when the secret was stored:
      -- a secret is injected only while the route still points there (SPEC §5).
      CREATE TABLE user_secrets (
        user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        route text NOT NULL,
        upstream_fingerprint text NOT NULL,
        ciphertext text NOT NULL,
        key_id text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (user_id, route)
      );
    `,
  },
  {
    // 5 belongs to the user-secrets work; versions need not be contiguous, only distinct
    // and applied in order.
    version: 6,
    name: 'WebAuthn passkeys',
    sql: `
      -- One row per registered authenticator credential. credential_id is the authenticator's
      -- id (base64url), unique across users: a credential names exactly one user, which is
      -- what a passkey-only sign-in relies on. public_key is the COSE key, base64url.
      CREATE TABLE webauthn_credentials (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        credential_id text NOT NULL UNIQUE,
        public_key text NOT NULL,
        counter bigint NOT NULL DEFAULT 0 CHECK (counter >= 0),
        transports text[] NOT NULL DEFAULT '{}',
        name text NOT NULL,
        backed_up boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz
      );
      CREATE INDEX webauthn_credentials_user_id ON webauthn_credentials (user_id);
    `,
  },
]
