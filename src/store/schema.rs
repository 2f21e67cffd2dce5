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
diesel::joinable!(user_emails -> users (user_id));
diesel::joinable!(group_members -> groups (group_id));

diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    api_tokens,
    users,
    user_emails,
    groups,
    group_members
);
