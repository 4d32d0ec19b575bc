use std::collections::HashMap;

use arrow::array::AsArray;
use flightdeck::flight::proto::session_option_value::OptionValue;
use flightdeck::flight::proto::{
    CloseSessionResult, GetSessionOptionsResult, SessionOptionValue, SetSessionOptionsRequest, SetSessionOptionsResult,
};
use prost::Message;
use tonic::Code;

use crate::common::*;

fn text(v: &str) -> SessionOptionValue {
    SessionOptionValue { option_value: Some(OptionValue::StringValue(v.into())) }
}

async fn set(c: &mut Client, options: &[(&str, SessionOptionValue)]) -> SetSessionOptionsResult {
    let req =
        SetSessionOptionsRequest { session_options: options.iter().map(|(k, v)| (k.to_string(), v.clone())).collect() };
    let out = c.action("SetSessionOptions", req.encode_to_vec()).await.unwrap();
    SetSessionOptionsResult::decode(out[0].clone()).unwrap()
}

async fn options(c: &mut Client) -> HashMap<String, String> {
    let out = c.action("GetSessionOptions", vec![]).await.unwrap();
    GetSessionOptionsResult::decode(out[0].clone())
        .unwrap()
        .session_options
        .into_iter()
        .map(|(k, v)| match v.option_value {
            Some(OptionValue::StringValue(s)) => (k, s),
            other => (k, format!("{other:?}")),
        })
        .collect()
}

#[tokio::test]
async fn session_options_set_catalog_and_schema_for_that_client_only() {
    let server = TestServer::start().await;
    let mut c = server.client().await.as_user("alice");
    let mut other = server.client().await.as_user("alice");
    let result = set(&mut c, &[("catalog", text("tpch")), ("schema", text("tiny"))]).await;
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    assert!(!c.cookies.is_empty(), "the session travels in cookies");
    let (_, batches) = c.query_cached("SELECT count(*) FROM nation", None).await.unwrap();
    assert_eq!(batches[0].column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0), 25);
    let got = options(&mut c).await;
    assert_eq!((got["catalog"].as_str(), got["schema"].as_str()), ("tpch", "tiny"));
    // Another connection of the same user has its own session.
    let e = other.query_cached("SELECT count(*) FROM nation", None).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    // Another schema: cached results of the first are not reused.
    assert!(set(&mut c, &[("schema", text("sf1"))]).await.errors.is_empty());
    let (outcome, batches) = c.query_cached("SELECT count(*) FROM region", None).await.unwrap();
    assert_eq!(outcome, "miss");
    assert_eq!(batches[0].column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0), 5);
    // CloseSession forgets it.
    let out = c.action("CloseSession", vec![]).await.unwrap();
    assert_eq!(CloseSessionResult::decode(out[0].clone()).unwrap().status, 1);
    assert!(c.cookies.is_empty(), "{:?}", c.cookies);
    assert!(options(&mut c).await.is_empty());
}

#[tokio::test]
async fn bad_session_options_are_reported_per_option() {
    let server = TestServer::start().await;
    let mut c = server.client().await.as_user("alice");
    let result =
        set(&mut c, &[("catalog", text("nope")), ("no_such_property", text("1")), ("query_max_run_time", text("2h"))])
            .await;
    assert_eq!(result.errors.get("catalog").map(|e| e.value), Some(2), "INVALID_VALUE: {:?}", result.errors);
    assert_eq!(result.errors.get("no_such_property").map(|e| e.value), Some(1), "INVALID_NAME: {:?}", result.errors);
    assert!(!result.errors.contains_key("query_max_run_time"));
    assert_eq!(options(&mut c).await.get("query_max_run_time").map(String::as_str), Some("2h"));
    // A catalog the user may not see is refused too.
    let mut restricted = server.client().await.as_user("restricted");
    let result = set(&mut restricted, &[("catalog", text("memory"))]).await;
    assert!(result.errors.contains_key("catalog"), "{:?}", result.errors);
}

#[tokio::test]
async fn use_and_set_session_statements_change_the_session() {
    let server = TestServer::start().await;
    let mut c = server.client().await.as_user("alice");
    c.query_cached("USE tpch.tiny", None).await.unwrap();
    let (_, batches) = c.query_cached("SELECT name FROM region ORDER BY name", None).await.unwrap();
    assert_eq!(batches[0].column(0).as_string::<i32>().value(0), "AFRICA");
    c.query_cached("SET SESSION query_max_run_time = '3h'", None).await.unwrap();
    let got = options(&mut c).await;
    assert_eq!(got.get("query_max_run_time").map(String::as_str), Some("3h"), "{got:?}");
    assert_eq!(got.get("schema").map(String::as_str), Some("tiny"));
    c.query_cached("RESET SESSION query_max_run_time", None).await.unwrap();
    assert!(!options(&mut c).await.contains_key("query_max_run_time"));
    // A forged cookie is ignored: defaults apply.
    c.cookies = [("flightdeck_catalog".to_string(), "AAAA".to_string())].into();
    assert!(options(&mut c).await.is_empty());
}

#[tokio::test]
async fn overlapping_option_calls_keep_every_option() {
    // ADBC sets catalog and schema in two calls and, under load, sends the
    // second before it stored the first answer's cookie. Both answers are
    // made from a session without the other option, then stored in turn.
    let server = TestServer::start().await;
    let mut c = server.client().await.as_user("alice");
    let mut overlapping = server.client().await.as_user("alice");
    assert!(set(&mut c, &[("catalog", text("tpch"))]).await.errors.is_empty());
    assert!(set(&mut overlapping, &[("schema", text("tiny"))]).await.errors.is_empty());
    c.cookies.extend(overlapping.cookies);
    let got = options(&mut c).await;
    assert_eq!((got["catalog"].as_str(), got["schema"].as_str()), ("tpch", "tiny"));
    let (_, batches) = c.query_cached("SELECT count(*) FROM region", None).await.unwrap();
    assert_eq!(batches[0].column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0), 5);
}

#[tokio::test]
async fn schema_then_catalog_in_separate_calls_keeps_both() {
    // Clients set options one call at a time, in any order (ADBC does).
    let server = TestServer::start().await;
    let mut c = server.client().await.as_user("alice");
    assert!(set(&mut c, &[("schema", text("tiny"))]).await.errors.is_empty());
    assert!(set(&mut c, &[("catalog", text("tpch"))]).await.errors.is_empty());
    let got = options(&mut c).await;
    assert_eq!((got["catalog"].as_str(), got["schema"].as_str()), ("tpch", "tiny"));
    let (_, batches) = c.query_cached("SELECT count(*) FROM region", None).await.unwrap();
    assert_eq!(batches[0].column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0), 5);
}
