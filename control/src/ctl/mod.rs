//! `brindlectl`: a calicoctl-compatible command-line client over the datastore.
