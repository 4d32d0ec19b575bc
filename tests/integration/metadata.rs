use arrow::array::{AsArray, RecordBatch};
use arrow::ipc::convert::try_schema_from_ipc_buffer;
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, ProstMessageExt, SqlInfo,
};
use arrow_flight::{FlightDescriptor, FlightInfo};
use prost::Message;
use tonic::{Code, Status};

use crate::common::*;

/// GetFlightInfo + DoGet of a metadata command; checks the stream's schema
/// equals the advertised one, nullability included.
async fn get(c: &mut Client, cmd: impl ProstMessageExt) -> Result<Vec<RecordBatch>, Status> {
    let d = FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec());
    let info: FlightInfo = c.inner.get_flight_info(c.request(d)).await?.into_inner();
    let advertised = info.clone().try_decode_schema().unwrap();
    let (schema, batches) = c.fetch(info.endpoint[0].ticket.clone().unwrap()).await?;
    assert_eq!(schema.as_ref(), &advertised, "stream schema equals FlightInfo schema");
    Ok(batches)
}

fn column(batches: &[RecordBatch], i: usize) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| b.column(i).as_string::<i32>().iter().map(|v| v.unwrap_or("").to_string()).collect::<Vec<_>>())
        .collect()
}

#[tokio::test]
async fn catalogs_schemas_and_tables_come_from_trino() {
    let server = TestServer::start().await;
    let mut c = server.client().await.as_user("alice");
    let catalogs = get(&mut c, CommandGetCatalogs {}).await.unwrap();
    assert_eq!(catalogs[0].schema(), CommandGetCatalogs {}.into_builder().schema(), "spec schema");
    let names = column(&catalogs, 0);
    for expected in ["memory", "system", "tpch"] {
        assert!(names.contains(&expected.to_string()), "{names:?}");
    }
    let schemas = get(
        &mut c,
        CommandGetDbSchemas { catalog: Some("tpch".into()), db_schema_filter_pattern: Some("sf1%".into()) },
    )
    .await
    .unwrap();
    let schema_names = column(&schemas, 1);
    assert!(
        schema_names.contains(&"sf1".to_string()) && schema_names.contains(&"sf100".to_string()),
        "{schema_names:?}"
    );
    assert!(!schema_names.contains(&"tiny".to_string()));
    // `_` matches one character.
    let one =
        get(&mut c, CommandGetDbSchemas { catalog: Some("tpch".into()), db_schema_filter_pattern: Some("sf_".into()) })
            .await
            .unwrap();
    assert_eq!(column(&one, 1), vec!["sf1"]);

    let cmd = CommandGetTables {
        catalog: Some("tpch".into()),
        db_schema_filter_pattern: Some("tiny".into()),
        table_name_filter_pattern: Some("n%".into()),
        table_types: vec![],
        include_schema: true,
    };
    let tables = get(&mut c, cmd).await.unwrap();
    assert_eq!(column(&tables, 2), vec!["nation"]);
    assert_eq!(column(&tables, 3), vec!["TABLE"]);
    let table_schema = try_schema_from_ipc_buffer(tables[0].column(4).as_binary::<i32>().value(0)).unwrap();
    // Same columns and types as a query of the table.
    let (_, query_schema, _) = c.query("SELECT * FROM tpch.tiny.nation").await.unwrap();
    let names: Vec<&str> = table_schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, vec!["nationkey", "name", "regionkey", "comment"]);
    for (t, q) in table_schema.fields().iter().zip(query_schema.fields()) {
        assert_eq!(t.data_type(), q.data_type());
        assert_eq!(t.metadata()["ARROW:FLIGHT:SQL:TYPE_NAME"], q.metadata()["ARROW:FLIGHT:SQL:TYPE_NAME"]);
        assert_eq!(t.metadata()["ARROW:FLIGHT:SQL:TABLE_NAME"], "nation");
    }
    let plain = CommandGetTables {
        catalog: Some("tpch".into()),
        db_schema_filter_pattern: Some("tiny".into()),
        table_name_filter_pattern: None,
        table_types: vec!["TABLE".into()],
        include_schema: false,
    };
    let tables = get(&mut c, plain).await.unwrap();
    assert_eq!(tables[0].num_columns(), 4, "no table_schema column without include_schema");
    assert_eq!(column(&tables, 2).len(), 8);

    let types = get(&mut c, CommandGetTableTypes {}).await.unwrap();
    assert!(column(&types, 0).contains(&"TABLE".to_string()));
}

#[tokio::test]
async fn unknown_and_hidden_catalogs_are_errors() {
    let server = TestServer::start().await;
    let mut alice = server.client().await.as_user("alice");
    let e = get(&mut alice, CommandGetDbSchemas { catalog: Some("nope".into()), db_schema_filter_pattern: None })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e}");
    let mut restricted = server.client().await.as_user("restricted");
    let catalogs = column(&get(&mut restricted, CommandGetCatalogs {}).await.unwrap(), 0);
    assert!(!catalogs.contains(&"memory".to_string()), "Trino hides the catalog: {catalogs:?}");
    let e = get(
        &mut restricted,
        CommandGetTables {
            catalog: Some("memory".into()),
            db_schema_filter_pattern: None,
            table_name_filter_pattern: None,
            table_types: vec![],
            include_schema: false,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(e.code(), Code::PermissionDenied | Code::NotFound), "{e}");
}

#[tokio::test]
async fn keys_sql_info_and_types() {
    let server = TestServer::start().await;
    let mut c = server.client().await.as_user("alice");
    let cmd =
        CommandGetPrimaryKeys { catalog: Some("tpch".into()), db_schema: Some("tiny".into()), table: "nation".into() };
    let d = FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec());
    let info = c.inner.get_flight_info(c.request(d)).await.unwrap().into_inner();
    let (schema, pk) = c.fetch(info.endpoint[0].ticket.clone().unwrap()).await.unwrap();
    assert_eq!(pk.iter().map(|b| b.num_rows()).sum::<usize>(), 0, "Trino has no key constraints");
    assert_eq!(schema.field(5).name(), "key_sequence");
    assert!(!schema.field(5).is_nullable());
    let info = get(&mut c, CommandGetSqlInfo { info: vec![] }).await.unwrap();
    assert!(info[0].num_rows() > 60);
    let name = get(&mut c, CommandGetSqlInfo { info: vec![SqlInfo::FlightSqlServerName as u32] }).await.unwrap();
    assert_eq!(name[0].num_rows(), 1);
    let types = get(&mut c, CommandGetXdbcTypeInfo { data_type: None }).await.unwrap();
    assert!(column(&types, 0).contains(&"timestamp with time zone".to_string()));
}

#[tokio::test]
async fn cancel_flight_info_cancels_the_trino_query() {
    let server = TestServer::uncached().await;
    let mut c = server.client().await;
    let m = marker("cancel_info");
    let info = c.info(&format!("SELECT l.*, '{m}' AS m FROM tpch.sf1.lineitem l")).await.unwrap();
    let req = arrow_flight::CancelFlightInfoRequest { info: Some(info.clone()) };
    let action = arrow_flight::Action { r#type: "CancelFlightInfo".into(), body: req.encode_to_vec().into() };
    let mut s = c.inner.do_action(c.request(action)).await.unwrap().into_inner();
    let r = arrow_flight::CancelFlightInfoResult::decode(s.message().await.unwrap().unwrap().body).unwrap();
    assert_eq!(r.status, arrow_flight::CancelStatus::Cancelled as i32);
    let sql = format!(
        "SELECT count(*) FROM system.runtime.queries WHERE query LIKE '%{m}%' AND error_code = 'USER_CANCELED' AND query NOT LIKE '%system.runtime%'"
    );
    let mut cancelled = 0;
    for _ in 0..50 {
        let (_, b) = trino_direct().execute(&session("check"), &sql).await.unwrap();
        cancelled = b[0].column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0);
        if cancelled == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(cancelled, 1, "Trino shows the query cancelled");
    // Cancelling again: nothing left to cancel.
    let req = arrow_flight::CancelFlightInfoRequest { info: Some(info) };
    let action = arrow_flight::Action { r#type: "CancelFlightInfo".into(), body: req.encode_to_vec().into() };
    let mut s = c.inner.do_action(c.request(action)).await.unwrap().into_inner();
    let r = arrow_flight::CancelFlightInfoResult::decode(s.message().await.unwrap().unwrap().body).unwrap();
    assert_eq!(r.status, arrow_flight::CancelStatus::NotCancellable as i32);
}
