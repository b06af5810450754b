//! The gRPC API in `proto/` compiles with a standard protobuf compiler and
//! has the shape the data plane promises.

use std::path::Path;

fn proto_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto")
}

#[test]
fn the_api_compiles_and_has_its_service_and_event() {
    let files = protox::compile(["enforcement/v1/enforcement.proto"], [proto_dir()])
        .unwrap_or_else(|e| panic!("proto/ does not compile: {e:?}"));
    let api = files
        .file
        .iter()
        .find(|f| f.name() == "enforcement/v1/enforcement.proto")
        .expect("the API file");
    assert_eq!(api.package(), "enforcement.v1");

    let service = &api.service[0];
    assert_eq!(service.name(), "Enforcement");
    let methods: Vec<(&str, bool, bool)> = service
        .method
        .iter()
        .map(|m| (m.name(), m.client_streaming(), m.server_streaming()))
        .collect();
    assert_eq!(
        methods,
        [
            ("Evaluate", false, false),
            ("EvaluateStream", true, true),
            ("GetDecision", false, false),
            ("ListDecisions", false, false),
            ("GetShadowReport", false, false),
            ("WatchDecisions", false, true),
            ("SubmitLabels", false, false),
            ("WatchOverturns", false, true),
            ("ExportReports", false, false),
        ]
    );

    let event = api
        .message_type
        .iter()
        .find(|m| m.name() == "Event")
        .expect("an Event message");
    let fields: Vec<&str> = event.field.iter().map(|f| f.name()).collect();
    assert_eq!(
        fields,
        ["id", "kind", "occurred_at", "actor", "target", "attributes"]
    );
    let occurred_at = &event.field[2];
    assert_eq!(occurred_at.type_name(), ".google.protobuf.Timestamp");
}
