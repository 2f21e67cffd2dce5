// Portable schema shared by SQLite and PostgreSQL (types in MultiConnection's
// common subset). Matches migrations/{sqlite,postgres}.

diesel::table! {
    tenants (id) {
        id -> Text,
        name -> Text,
        created_at -> Text,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        scope -> Text,
        secret_hash -> Text,
        acts_as -> Nullable<Text>,
        created_at -> Text,
        revoked_at -> Nullable<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        tenant_id -> Text,
        state -> Text,
        user_name -> Text,
        user_name_key -> Text,
        external_id -> Nullable<Text>,
        display_name_key -> Nullable<Text>,
        given_name_key -> Nullable<Text>,
        family_name_key -> Nullable<Text>,
        active -> Bool,
        manager_id -> Nullable<Text>,
        suspended_at -> Nullable<Text>,
        data -> Text,
        created_at -> Text,
        updated_at -> Text,
        version -> BigInt,
        legal_hold -> Bool,
        manager_key -> Nullable<Text>,
        search -> Nullable<Text>,
    }
}

diesel::table! {
    user_emails (user_id, position) {
        user_id -> Text,
        position -> Integer,
        tenant_id -> Text,
        value -> Text,
        value_key -> Text,
        kind -> Nullable<Text>,
        is_primary -> Bool,
    }
}

diesel::table! {
    groups (id) {
        id -> Text,
        tenant_id -> Text,
        display_name -> Text,
        display_name_key -> Text,
        external_id -> Nullable<Text>,
        data -> Text,
        created_at -> Text,
        updated_at -> Text,
        version -> BigInt,
    }
}

diesel::table! {
    group_members (group_id, member_id) {
        group_id -> Text,
        member_id -> Text,
        tenant_id -> Text,
        member_type -> Text,
        created_at -> Text,
    }
}

diesel::joinable!(api_tokens -> tenants (tenant_id));

diesel::table! {
    console_sessions (id_hash) {
        id_hash -> Text,
        tenant_id -> Text,
        token_id -> Text,
        scope -> Text,
        created_at -> Text,
        last_seen -> Text,
        csrf -> Text,
    }
}

diesel::joinable!(console_sessions -> api_tokens (token_id));
diesel::joinable!(user_emails -> users (user_id));
diesel::joinable!(group_members -> groups (group_id));

diesel::table! {
    content_items (tenant_id, kind, item_id) {
        tenant_id -> Text,
        kind -> Text,
        item_id -> Text,
        owner_id -> Nullable<Text>,
        parent_kind -> Nullable<Text>,
        parent_id -> Nullable<Text>,
        title -> Nullable<Text>,
        personal_root -> Bool,
        created_at -> Text,
        updated_at -> Text,
    }
}

diesel::table! {
    content_shares (tenant_id, kind, item_id, user_id) {
        tenant_id -> Text,
        kind -> Text,
        item_id -> Text,
        user_id -> Text,
        created_at -> Text,
    }
}

diesel::table! {
    user_data (tenant_id, category, record_id) {
        tenant_id -> Text,
        category -> Text,
        record_id -> Text,
        user_id -> Text,
        created_at -> Text,
        updated_at -> Text,
    }
}

diesel::table! {
    sso_subjects (tenant_id, issuer, subject) {
        tenant_id -> Text,
        issuer -> Text,
        subject -> Text,
        user_id -> Text,
        created_at -> Text,
    }
}

diesel::table! {
    disposals (id) {
        id -> Text,
        tenant_id -> Text,
        user_id -> Text,
        state -> Text,
        cause -> Text,
        due_at -> Text,
        actor -> Text,
        caller_user_id -> Nullable<Text>,
        plan_hash -> Nullable<Text>,
        policy_digest -> Nullable<Text>,
        counts -> Nullable<Text>,
        created_at -> Text,
        completed_at -> Nullable<Text>,
    }
}

diesel::table! {
    disposal_items (disposal_id, kind, item_id) {
        disposal_id -> Text,
        kind -> Text,
        item_id -> Text,
        action -> Text,
        from_owner -> Nullable<Text>,
        to_owner -> Nullable<Text>,
        target_link -> Nullable<Text>,
    }
}

diesel::table! {
    tombstones (id) {
        id -> Text,
        tenant_id -> Text,
        disposal_id -> Nullable<Text>,
        created_at -> Text,
        lifted_at -> Nullable<Text>,
        had_external_id -> Bool,
    }
}

diesel::table! {
    tombstone_hashes (tombstone_id, hash) {
        tombstone_id -> Text,
        tenant_id -> Text,
        hash -> Text,
        id_type -> Text,
        norm_version -> Integer,
    }
}

diesel::table! {
    deployment_keys (name) {
        name -> Text,
        check_value -> Text,
        created_at -> Text,
    }
}

diesel::table! {
    replicas (id) {
        id -> Text,
        label -> Text,
        version -> Text,
        schema_version -> Text,
        policy_digest -> Text,
        started_at -> Text,
        last_seen -> Text,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        tenant_id -> Text,
        at -> Text,
        actor -> Text,
        action -> Text,
        subject_type -> Text,
        subject_id -> Text,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    tenant_counters (tenant_id) {
        tenant_id -> Text,
        brake_tripped_at -> Nullable<Text>,
        next_seq -> BigInt,
        disposals_done -> BigInt,
        events_purged_through -> BigInt,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        tenant_id -> Text,
        seq -> BigInt,
        event_type -> Text,
        subject_user_id -> Nullable<Text>,
        data -> Text,
        occurred_at -> Text,
    }
}

diesel::table! {
    webhook_cursors (tenant_id, endpoint) {
        tenant_id -> Text,
        endpoint -> Text,
        last_seq -> BigInt,
        attempts -> Integer,
        next_attempt_at -> Text,
        paused -> Bool,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Text>,
        last_error -> Nullable<Text>,
        last_error_at -> Nullable<Text>,
    }
}

diesel::joinable!(disposals -> tenants (tenant_id));
diesel::joinable!(tombstone_hashes -> tombstones (tombstone_id));
diesel::joinable!(disposal_items -> disposals (disposal_id));

diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    api_tokens,
    users,
    user_emails,
    groups,
    group_members,
    content_items,
    content_shares,
    user_data,
    sso_subjects,
    disposals,
    disposal_items,
    tombstones,
    tombstone_hashes,
    deployment_keys,
    audit_log,
    tenant_counters,
    outbox,
    webhook_cursors,
    console_sessions,
    replicas,
);
