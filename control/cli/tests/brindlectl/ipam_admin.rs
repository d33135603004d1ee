//! `ipam configure`, `ipam show --show-configuration` and `ipam split`.

use super::fixture::*;

fn config_table(strict: bool) -> String {
    let v = if strict { "true " } else { "false" };
    format!(
        "+--------------------+-------+\n\
         | PROPERTY           | VALUE |\n\
         +--------------------+-------+\n\
         | StrictAffinity     | {v} |\n\
         | AutoAllocateBlocks | true  |\n\
         +--------------------+-------+\n"
    )
}

pub(crate) fn ipam_configure_strict_affinity(f: &Fixture) {
    f.ok(
        &["ipam", "show", "--show-configuration"],
        &config_table(false),
    );
    f.ok(
        &["ipam", "configure", "--strictaffinity=true"],
        "Successfully set StrictAffinity to: true\n",
    );
    f.ok(
        &["ipam", "show", "--show-configuration"],
        &config_table(true),
    );
    // Stored where IPAM reads it, so assignment stops borrowing.
    assert!(ipam::Ipam::new(f.store()).config().unwrap().strict_affinity);

    f.fails(
        &["ipam", "configure", "--strictaffinity=maybe"],
        "invalid value 'maybe' for --strictaffinity. Use true or false to set strictaffinity",
    );
    f.fails(
        &["ipam", "configure"],
        "at least one configuration option must be specified",
    );
    f.fails(
        &["ipam", "configure", "--max-blocks-per-host=4"],
        "--max-blocks-per-host=4 is not supported: brindle's IPAM has no MaxBlocksPerHost setting (only --strictaffinity)",
    );
    f.ok(
        &["ipam", "show", "--show-configuration"],
        &config_table(true),
    );
    f.ok(
        &["ipam", "configure", "--strictaffinity", "F"],
        "Successfully set StrictAffinity to: false\n",
    );
    f.ok(
        &["ipam", "show", "--show-configuration"],
        &config_table(false),
    );
    assert!(!ipam::Ipam::new(f.store()).config().unwrap().strict_affinity);
}

/// Asserts the pool exists with `cidr` and is not disabled.
fn assert_enabled(f: &Fixture, name: &str, cidr: &str) {
    let yaml = f.stdout(&["get", "ippool", name, "-o", "yaml"]);
    assert!(
        yaml.contains(&format!("cidr: {cidr}")) && !yaml.contains("disabled: true"),
        "{yaml}"
    );
}

pub(crate) fn ipam_split_pools(f: &Fixture) {
    let p1 = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p1\n  labels: {zone: a}\nspec:\n  cidr: 10.50.0.0/16\n  ipipMode: Always\n  natOutgoing: true\n";
    f.ok(
        &["create", "-f", &f.file("p1.yaml", p1)],
        "Successfully created 1 'IPPool' resource(s)\n",
    );
    f.fails(
        &["ipam", "split", "4", "--name", "p1"],
        "datastore is not locked. Run the `brindlectl datastore migrate lock` command in order split the IP pools",
    );
    f.ok(&["datastore", "migrate", "lock"], "Datastore locked.\n");
    f.fails(
        &["ipam", "split", "4"],
        "no name or CIDR provided. Provide a name or CIDR to denote the IP pool to split",
    );
    f.fails(
        &["ipam", "split", "four", "--name", "p1"],
        "error reading number to split IP pools into. four is not a valid number",
    );
    f.fails(
        &["ipam", "split", "-2", "--name", "p1"],
        "error reading number to split IP pools into. -2 is not a valid number",
    );
    f.fails(
        &["ipam", "split", "3", "--name", "p1"],
        "error splitting the CIDR 10.50.0.0/16 into 3 CIDRs: number to split CIDR into is not a valid power of 2: 3",
    );
    f.fails(
        &["ipam", "split", "2", "--name", "nope"],
        "unable to find IP pool with name nope: resource does not exist: IPPool(nope) with error: <nil>",
    );
    f.fails(
        &["ipam", "split", "2", "--cidr", "10.99.0.0/16"],
        "unable to find IP pool covering the specified CIDR 10.99.0.0/16",
    );
    f.fails(
        &["ipam", "split", "2", "--cidr", "banana"],
        "invalid --cidr 'banana': not a CIDR",
    );
    // The refusals changed nothing: p1 is still there and enabled.
    assert_enabled(f, "p1", "10.50.0.0/16");

    f.ok(
        &["ipam", "split", "4", "--name", "p1"],
        "IP Pool p1 was successfully split into 4 smaller pools.\n\
         Created split-p1-0 with CIDR 10.50.0.0/18.\n\
         Created split-p1-1 with CIDR 10.50.64.0/18.\n\
         Created split-p1-2 with CIDR 10.50.128.0/18.\n\
         Created split-p1-3 with CIDR 10.50.192.0/18.\n\
         Please refer to the documentation for final steps.\n",
    );
    f.fails(
        &["get", "ippool", "p1"],
        "Failed to get resources: resource does not exist: IPPool(p1) with error: <nil>",
    );
    let yaml = f.stdout(&["get", "ippool", "split-p1-2", "-o", "yaml"]);
    for want in [
        "cidr: 10.50.128.0/18",
        "ipipMode: Always",
        "natOutgoing: true",
        "zone: a",
    ] {
        assert!(yaml.contains(want), "{want} in {yaml}");
    }
    assert!(!yaml.contains("disabled"), "{yaml}");

    f.ok(
        &["ipam", "split", "2", "--cidr", "10.50.64.0/18"],
        "IP Pool split-p1-1 was successfully split into 2 smaller pools.\n\
         Created split-split-p1-1-0 with CIDR 10.50.64.0/19.\n\
         Created split-split-p1-1-1 with CIDR 10.50.96.0/19.\n\
         Please refer to the documentation for final steps.\n",
    );

    // Parts smaller than the pool's blocks would be invalid pools: refused before any write.
    let small = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: small\nspec:\n  cidr: 10.60.0.0/26\n";
    f.ok(
        &["create", "-f", &f.file("small.yaml", small)],
        "Successfully created 1 'IPPool' resource(s)\n",
    );
    f.fails(
        &["ipam", "split", "2", "--name", "small"],
        "error splitting the CIDR 10.60.0.0/26 into 2 CIDRs: each part would be smaller than the pool's blockSize /26",
    );
    assert_enabled(f, "small", "10.60.0.0/26");
}
