//! brindlectl end to end: the real binary against the embedded store (a temp file) and
//! against a real etcd started by the test, with the same cases for both backends.

mod cluster;
mod convert;
mod diags;
mod editing;
mod environment;
mod fixture;
mod ipam_admin;
mod ipam_report;
mod migrate;
mod resources;
mod templates;
mod validation;

use cluster::*;
use convert::*;
use diags::*;
use editing::*;
use fixture::Fixture;
use ipam_admin::*;
use ipam_report::*;
use migrate::*;
use resources::*;
use templates::*;
use validation::*;

/// Declares each case as one test per backend.
macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $( #[test] fn $case() { super::$case(&super::Fixture::embedded(stringify!($case))) } )*
        }
        mod etcd {
            $( #[test] fn $case() { super::$case(&super::Fixture::etcd(stringify!($case))) } )*
        }
    };
}

both_backends!(
    create_get_delete_round_trip_for_several_kinds,
    create_of_an_existing_resource_fails_unless_skipped,
    multi_document_files_and_stdin,
    get_yaml_can_be_applied_again_and_a_stale_version_conflicts,
    replace_needs_an_existing_resource,
    invalid_manifests_name_the_field_and_value,
    overlapping_pools_are_refused,
    pool_cidr_is_immutable,
    namespaces_and_all_namespaces,
    label_and_patch,
    ipam_show_release_and_check_after_allocating,
    version_reports_the_cluster_information,
    delete_of_a_missing_resource,
    built_in_tiers_exist_after_a_write,
    get_with_custom_columns,
    ipam_check_flags_and_report,
    ipam_release_from_a_report,
    ipam_configure_strict_affinity,
    ipam_split_pools,
    datastore_migrate_export_and_import,
    datastore_unlock_needs_cluster_information,
    workload_endpoint_limits_round_trip_and_unenforced_ones_are_refused,
    get_with_go_templates,
    get_export_strips_cluster_metadata,
    manifests_of_a_directory_and_recursive,
    version_polls_until_interrupted,
);

/// Conversion needs no datastore, and a v1 manifest is refused before one is opened: the
/// embedded store is enough.
macro_rules! embedded_only {
    ($($case:ident),* $(,)?) => {
        mod embedded_only {
            $( #[test] fn $case() { super::$case(&super::Fixture::embedded(stringify!($case))) } )*
        }
    };
}

embedded_only!(
    convert_turns_the_documents_v1_manifests_into_v3,
    converted_v1_manifests_are_created_as_printed,
    create_apply_and_replace_of_a_v1_manifest_name_the_convert_command,
    converting_what_is_not_a_v1_resource_fails_naming_it,
    other_v1_kinds_convert_too,
    names_that_are_no_key_segment_are_refused,
    validate_checks_without_writing,
    node_diags_bundles_what_it_can_and_says_why_not,
);
