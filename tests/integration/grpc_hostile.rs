//! A corpus of hostile requests sent to a real server: strings far over
//! their limits, ten thousand attributes, bytes that are not UTF-8 where
//! text belongs, NaN and infinite floats, timestamps at the ends of their
//! range, huge lists, and images that are not images. Each is refused with
//! the status a client can act on and a message naming the field (or, for
//! what is within every limit, decided); none stops the server, changes its
//! state or stops a good request after it. `grpc_errors` covers the
//! ordinary mistakes; this is what an attacker or a broken client sends.

use enforcer::api::v1;
use enforcer::pipeline::PipelineOptions;
use enforcer::server::ServerOptions;
use prost::Message as _;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use crate::grpc_errors::good;
use crate::grpc_server::{TestServer, evaluate_stream_whole};
use enforcer_examples::hostile::{self, Hostile, value, wire_entity};

/// The good event the hostile ones are made from.
fn base() -> v1::Event {
    good("hostile")
}

fn with(change: impl FnOnce(&mut v1::Event)) -> v1::Event {
    hostile::with(&base(), change)
}

fn attribute(name: &str, kind: v1::value::Kind) -> v1::Event {
    hostile::attribute(&base(), name, kind)
}

fn hostile_events() -> Vec<Hostile> {
    hostile::hostile_events(&base())
}

/// Events within every limit, however large: decided.
fn large_but_lawful() -> Vec<(&'static str, v1::Event)> {
    use v1::value::Kind;
    vec![
        (
            "a list of 300,000 integers",
            attribute(
                "ints",
                Kind::IntList(v1::IntList {
                    values: vec![1; 300_000],
                }),
            ),
        ),
        (
            "a list of 100,000 empty texts",
            attribute(
                "texts",
                Kind::TextList(v1::TextList {
                    values: vec![String::new(); 100_000],
                }),
            ),
        ),
        (
            "a text of 3 MB",
            attribute("body", Kind::Text("é".repeat(1_500_000))),
        ),
    ]
}

/// Passes bytes through untouched, so that a test can send what no
/// generated client would: text fields that are not UTF-8.
struct RawCodec;
struct RawEncoder;
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Self::Error> {
        let mut out = vec![0; bytes::Buf::remaining(src)];
        bytes::Buf::copy_to_slice(src, &mut out);
        Ok(Some(out))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

/// `Evaluate` with a request body given as bytes.
async fn evaluate_raw(
    channel: Channel,
    body: Vec<u8>,
) -> Result<v1::EvaluateResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/enforcement.v1.Enforcement/Evaluate",
    );
    let response = grpc
        .unary(tonic::Request::new(body), path, RawCodec)
        .await?;
    Ok(v1::EvaluateResponse::decode(response.into_inner().as_slice()).expect("a response"))
}

/// A request whose `text` (found once in its encoding) is replaced by bytes
/// that are not UTF-8, of the same length.
fn not_utf8(event: v1::Event, text: &str) -> Vec<u8> {
    let mut body = v1::EvaluateRequest {
        event: Some(event),
        ..Default::default()
    }
    .encode_to_vec();
    let at = body
        .windows(text.len())
        .position(|w| w == text.as_bytes())
        .expect("the text is in the encoding");
    body[at] = 0xC3; // a lead byte followed by ASCII: invalid
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_precisely_and_the_server_goes_on() {
    let server = TestServer::start(PipelineOptions::default(), ServerOptions::default()).await;
    let mut client = server.client().await;
    let evaluate = |event: v1::Event| v1::EvaluateRequest {
        event: Some(event),
        ..Default::default()
    };

    for (what, event, code, words) in hostile_events() {
        let status = client.evaluate(evaluate(event)).await.expect_err(what);
        assert_eq!(status.code(), code, "{what}: {status:?}");
        for word in &words {
            assert!(
                status.message().contains(word.as_str()),
                "{what}: {word:?} not in {:?}",
                status.message().chars().take(300).collect::<String>()
            );
        }
        // A refusal quotes what it must, not the whole hostile value.
        assert!(
            status.message().len() < 1024,
            "{what}: a {}-byte message",
            status.message().len()
        );
    }
    // Nothing refused was decided, logged or counted.
    assert!(server.log.is_empty());
    assert_eq!(server.pipeline.live_state().size().entities, 0);

    // Text that is not UTF-8 never reaches the engine: the wire decoder
    // refuses it (INTERNAL, as gRPC specifies for a request that does not
    // parse), naming the message and field.
    let mut attributed = good("utf8-attr");
    attributed.attributes.insert(
        "note".into(),
        value(v1::value::Kind::Text("marker-text".into())),
    );
    let cases = [
        (
            "event id",
            not_utf8(good("marker-id"), "marker-id"),
            "Event.id",
        ),
        (
            "kind",
            not_utf8(with(|e| e.kind = "marker.kind".into()), "marker.kind"),
            "Event.kind",
        ),
        (
            "actor id",
            not_utf8(
                with(|e| e.actor = wire_entity("marker-actor")),
                "marker-actor",
            ),
            "Entity.id",
        ),
        (
            "attribute name",
            not_utf8(attributed.clone(), "note"),
            "Event.attributes",
        ),
        (
            "attribute text",
            not_utf8(attributed, "marker-text"),
            // prost names a oneof's string by the oneof.
            "Value.kind",
        ),
    ];
    for (what, body, field) in cases {
        let status = evaluate_raw(server.channel().await, body)
            .await
            .expect_err(what);
        assert_eq!(status.code(), Code::Internal, "{what}: {status:?}");
        assert!(
            status.message().contains(field) && status.message().contains("UTF-8"),
            "{what}: {:?}",
            status.message()
        );
    }
    // Bytes that are no request at all.
    let status = evaluate_raw(server.channel().await, vec![0xFF; 64])
        .await
        .expect_err("garbage");
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(status.message().contains("failed to decode"), "{status:?}");
    assert!(server.log.is_empty());

    // Large but within every limit: decided.
    for (index, (what, mut event)) in large_but_lawful().into_iter().enumerate() {
        event.id = format!("large-{index}");
        let response = client
            .evaluate(evaluate(event))
            .await
            .unwrap_or_else(|s| panic!("{what}: {s}"));
        assert!(response.into_inner().decision.is_some(), "{what}");
    }
    assert_eq!(server.log.len(), 3);

    // And a good request after all of it.
    let response = client.evaluate(evaluate(good("fine"))).await.unwrap();
    assert_eq!(response.into_inner().decision.unwrap().id, "dec-fine");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_hostile_events_answers_each_and_goes_on() {
    let server = TestServer::start(PipelineOptions::default(), ServerOptions::default()).await;
    let mut client = server.client().await;
    let corpus = hostile_events();
    let mut requests: Vec<v1::EvaluateRequest> = corpus
        .iter()
        .enumerate()
        .map(|(index, (_, event, _, _))| {
            let mut event = event.clone();
            event.id = format!("hostile-{index}");
            v1::EvaluateRequest {
                event: Some(event),
                ..Default::default()
            }
        })
        .collect();
    requests.push(v1::EvaluateRequest {
        event: Some(good("last")),
        ..Default::default()
    });
    let results = evaluate_stream_whole(&mut client, requests).await;
    assert_eq!(results.len(), corpus.len() + 1);
    use v1::evaluate_stream_response::Result as R;
    for ((what, _, code, words), result) in corpus.iter().zip(&results) {
        let Some(R::Error(error)) = &result.result else {
            panic!("{what}: {result:?}")
        };
        assert_eq!(error.code, *code as i32, "{what}");
        let whole = format!("{}: {}", error.field, error.message);
        for word in words {
            assert!(
                whole.contains(word.as_str()),
                "{what}: {word:?} not in {:?}",
                whole.chars().take(300).collect::<String>()
            );
        }
        assert!(whole.len() < 1024, "{what}: a {}-byte error", whole.len());
    }
    assert!(matches!(
        results.last().unwrap().result,
        Some(R::Evaluated(_))
    ));
    assert_eq!(server.log.len(), 1);
    server.shutdown().await;
}
