//! Decoder tests over pages recorded from Trino 476 with
//! `scripts/record-trino-pages.py` (files under `tests/data/trino_pages/`).

use arrow::array::{
    AsArray, Decimal128Array, DurationMillisecondArray, Float32Array, Float64Array, Int64Array,
    IntervalMonthDayNanoArray, Time32MillisecondArray, Time64MicrosecondArray, Time64NanosecondArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
};
use arrow::datatypes::{Int32Type, Int64Type};
use arrow::util::display::array_value_to_string;

use super::*;
use crate::trino::types::TYPE_NAME_KEY;

/// Loads a recorded query: its columns and each `data` page's JSON text.
pub(crate) fn recorded(name: &str) -> (Vec<Column>, Vec<String>) {
    let path = format!("{}/tests/data/trino_pages/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let columns = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Column {
            name: c["name"].as_str().unwrap().to_string(),
            ty: TrinoType::parse(c["type"].as_str().unwrap()).unwrap(),
        })
        .collect();
    let pages = v["pages"].as_array().unwrap().iter().map(|p| p.to_string()).collect();
    (columns, pages)
}

fn decode_recorded(name: &str) -> RecordBatch {
    let (columns, pages) = recorded(name);
    let mut d = BatchDecoder::new(&columns);
    for p in &pages {
        d.decode(p).unwrap();
    }
    d.finish().unwrap()
}

fn col<'a>(b: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    b.column_by_name(name).unwrap_or_else(|| panic!("no column {name}"))
}

fn show(b: &RecordBatch, name: &str, row: usize) -> String {
    array_value_to_string(col(b, name), row).unwrap()
}

#[test]
fn scalars_and_their_nulls() {
    let b = decode_recorded("scalars");
    assert_eq!(b.num_rows(), 2);
    for (i, f) in b.schema().fields().iter().enumerate() {
        assert!(f.is_nullable(), "{} nullable", f.name());
        assert!(f.metadata().contains_key(TYPE_NAME_KEY), "{} type name", f.name());
        assert!(b.column(i).is_null(1), "{} null in the all-null row", f.name());
        assert!(b.column(i).is_valid(0), "{} valid in row 0", f.name());
    }
    assert!(col(&b, "b").as_boolean().value(0));
    assert_eq!(col(&b, "ti").as_primitive::<arrow::datatypes::Int8Type>().value(0), -128);
    assert_eq!(col(&b, "si").as_primitive::<arrow::datatypes::Int16Type>().value(0), 32767);
    assert_eq!(col(&b, "i").as_primitive::<Int32Type>().value(0), i32::MIN);
    assert_eq!(col(&b, "bi").as_primitive::<Int64Type>().value(0), i64::MAX);
    assert_eq!(col(&b, "r").as_any().downcast_ref::<Float32Array>().unwrap().value(0), 1.5);
    assert_eq!(col(&b, "d").as_any().downcast_ref::<Float64Array>().unwrap().value(0), 0.1);
    assert_eq!(show(&b, "s", 0), "héllo \"quoted\" \\\\ ☃");
    assert_eq!(show(&b, "c", 0), "ab  ", "char keeps Trino's padding");
    assert_eq!(col(&b, "vb").as_binary::<i32>().value(0), &[0x00, 0xff, 0x10]);
    assert_eq!(show(&b, "j", 0), r#"{"a":[1,2,{"b":null}]}"#);
    assert_eq!(col(&b, "dt").as_primitive::<arrow::datatypes::Date32Type>().value(0), 19782);
    assert_eq!(col(&b, "dt2").as_primitive::<arrow::datatypes::Date32Type>().value(0), -1);
    assert_eq!(show(&b, "u", 0), "12151fd2-7586-11e9-8f9e-2a86e4085a59");
    assert_eq!(show(&b, "ip6", 0), "2001:db8::ff00:42:8329");
    let ids = col(&b, "ids").as_any().downcast_ref::<DurationMillisecondArray>().unwrap();
    assert_eq!(ids.value(0), -(86_400_000 + 2 * 3_600_000 + 3 * 60_000 + 4_005));
    let iym = col(&b, "iym").as_any().downcast_ref::<IntervalMonthDayNanoArray>().unwrap();
    assert_eq!(iym.value(0), IntervalMonthDayNano::new(47, 0, 0));
    assert!(col(&b, "dnan").as_any().downcast_ref::<Float64Array>().unwrap().value(0).is_nan());
    assert_eq!(col(&b, "rneginf").as_any().downcast_ref::<Float32Array>().unwrap().value(0), f32::NEG_INFINITY);
    assert_eq!(col(&b, "dinf").as_any().downcast_ref::<Float64Array>().unwrap().value(0), f64::INFINITY);
}

#[test]
fn decimal_38_extremes() {
    let b = decode_recorded("scalars");
    let dec = |n: &str| col(&b, n).as_any().downcast_ref::<Decimal128Array>().unwrap().clone();
    let a = dec("dec38a");
    assert_eq!((a.precision(), a.scale()), (38, 9));
    assert_eq!(a.value(0), 12345678901234567890123456789123456789);
    let min = dec("dec38min");
    assert_eq!((min.precision(), min.scale()), (38, 0));
    assert_eq!(min.value(0), -99999999999999999999999999999999999999);
    let tiny = dec("dec38tiny");
    assert_eq!((tiny.precision(), tiny.scale()), (38, 38));
    assert_eq!(tiny.value(0), 1);
}

#[test]
fn timestamps_times_and_zones() {
    let b = decode_recorded("temporal");
    let ns = |n: &str| col(&b, n).as_any().downcast_ref::<TimestampNanosecondArray>().unwrap().value(0);
    let ms = |n: &str| col(&b, n).as_any().downcast_ref::<TimestampMillisecondArray>().unwrap().value(0);
    // Highest precision (12 digits) truncates to nanoseconds.
    assert_eq!(ns("ts12"), 1_706_704_496_123_456_789);
    assert_eq!(ms("ts0"), -2_208_988_800_000);
    assert_eq!(ms("ts1"), 1_710_037_800_500);
    // A wall time made ambiguous by the DST change resolves to the earlier instant (EDT).
    let ny = col(&b, "tstz6_ny").as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap();
    assert_eq!(ny.value(0), 1_730_611_800_123_456);
    assert_eq!(ny.timezone(), Some("UTC"));
    assert_eq!(ns("tstz12_ist"), 1_720_117_799_999_999_999);
    assert_eq!(ms("tstz3_utc"), 1_717_200_000_000);
    assert_eq!(ms("tstz3_ny_pre_epoch"), 17_999_999);
    assert_eq!(col(&b, "t0").as_any().downcast_ref::<Time32MillisecondArray>().unwrap().value(0), 0);
    assert_eq!(col(&b, "t12").as_any().downcast_ref::<Time64NanosecondArray>().unwrap().value(0), 86_399_999_999_999);
    assert_eq!(col(&b, "t6").as_any().downcast_ref::<Time64MicrosecondArray>().unwrap().value(0), 43_200_123_456);
    for i in 0..b.num_columns() {
        assert!(b.column(i).is_null(1));
    }
}

#[test]
fn zones_and_picoseconds_arrow_cannot_hold_ride_in_the_batch() {
    let columns = vec![
        Column { name: "tz".into(), ty: TrinoType::TimestampTz(12) },
        Column { name: "t".into(), ty: TrinoType::Time(12) },
        Column { name: "plain".into(), ty: TrinoType::TimestampTz(3) },
        Column { name: "nested".into(), ty: TrinoType::Array(Box::new(TrinoType::TimestampTz(3))) },
    ];
    let mut d = BatchDecoder::new(&columns);
    d.decode(
        r#"[["2024-01-01 00:00:00.123456789012 UTC","01:02:03.000000000001","2024-01-01 00:00:00.000 UTC",null],
            [null,null,"2024-01-01 00:00:00.000 UTC",["2024-01-01 00:00:00.000 Asia/Tokyo"]],
            ["2024-01-01 09:00:00.000000000100 Asia/Tokyo","23:59:59.999999999990","2024-01-01 00:00:00.000 +05:30",null]]"#,
    )
    .unwrap();
    let b = d.finish().unwrap();
    let of = |i: usize| Beyond::of(b.schema_ref().field(i));
    let tz = of(0).unwrap();
    assert_eq!(tz.zones, [(2, "Asia/Tokyo".to_string())]);
    assert_eq!(tz.picos, [(0, 12), (2, 100)]);
    assert_eq!((tz.zone(2), tz.zone(0), tz.picos(1), tz.picos(2)), (Some("Asia/Tokyo"), None, 0, 100));
    assert_eq!(of(1).unwrap(), Beyond { zones: vec![], picos: vec![(0, 1), (2, 990)], cells: vec![] });
    assert_eq!(of(2).unwrap().zones, [(2, "+05:30".to_string())]);
    // An array keeps the text of the cells that need it, as Trino sent them.
    assert_eq!(of(3).unwrap().cells, [(1, r#"["2024-01-01 00:00:00.000 Asia/Tokyo"]"#.to_string())]);
    // The same instant as the UTC value.
    let ps = col(&b, "tz").as_any().downcast_ref::<TimestampNanosecondArray>().unwrap();
    assert_eq!(ps.value(2), 1_704_067_200_000_000_000);
    // The decoder's own schema stays plain, and the next batch starts afresh.
    assert!(d.schema().fields().iter().all(|f| Beyond::of(f).is_none()));
    d.decode(r#"[["2024-01-01 00:00:00.000000000000 UTC",null,null,null]]"#).unwrap();
    let next = d.finish().unwrap();
    assert!(next.schema().fields().iter().all(|f| Beyond::of(f).is_none()));
    // What the fields carry counts as memory the batch holds.
    let carried: usize =
        [(0, Beyond::ZONES), (0, Beyond::PICOS), (1, Beyond::PICOS), (2, Beyond::ZONES), (3, Beyond::CELLS)]
            .iter()
            .map(|(i, k)| b.schema().field(*i).metadata()[*k].len())
            .sum();
    assert_eq!((Beyond::held_bytes(&b), Beyond::held_bytes(&next)), (carried, 0));
}

#[test]
fn nested_values_with_nulls_at_every_level() {
    let b = decode_recorded("nested");
    assert_eq!(b.num_rows(), 3);
    // Row 0: values with nulls inside.
    assert_eq!(show(&b, "ai", 0), "[1, , 3]");
    assert_eq!(show(&b, "aav", 0), "[[a, ], , []]");
    assert_eq!(show(&b, "mvd", 0), "{k1: 1.5, k2: }");
    assert_eq!(show(&b, "mia", 0), "{1: [2024-01-01], 2: }");
    assert_eq!(show(&b, "r", 0), "{a: 1, b c: x, nest: {d: 2.5, e: }}");
    assert_eq!(show(&b, "ranon", 0), "{_field0: 1, _field1: anon}");
    assert_eq!(show(&b, "ar", 0), "[{x: 1, y: }, ]");
    assert_eq!(show(&b, "mm", 0), "{true: {1.10: v}}");
    // Row 1: an array holding only a null, an empty map, a row of nulls, an empty array.
    let aav = col(&b, "aav").as_list::<i32>();
    assert!(aav.is_valid(1));
    assert_eq!(aav.value(1).len(), 1);
    assert!(aav.value(1).is_null(0));
    let mvd = col(&b, "mvd").as_map();
    assert!(mvd.is_valid(1));
    assert_eq!(mvd.value(1).len(), 0);
    let r = col(&b, "r").as_struct();
    assert!(r.is_valid(1));
    for c in r.columns() {
        assert!(c.is_null(1));
    }
    let ar = col(&b, "ar").as_list::<i32>();
    assert!(ar.is_valid(1));
    assert_eq!(ar.value(1).len(), 0);
    // Row 2: every value null at the top.
    for i in 0..b.num_columns() {
        assert!(b.column(i).is_null(2), "column {i}");
    }
    assert!(r.column(2).is_null(2), "children of a null row are null too");
}

#[test]
fn tpch_pages_decode_with_their_types() {
    let b = decode_recorded("lineitem");
    assert_eq!(b.num_rows(), 10_000);
    let schema = b.schema();
    assert_eq!(schema.field_with_name("orderkey").unwrap().data_type(), &DataType::Int64);
    assert_eq!(schema.field_with_name("extendedprice").unwrap().data_type(), &DataType::Float64);
    assert_eq!(schema.field_with_name("shipdate").unwrap().data_type(), &DataType::Date32);
    assert_eq!(schema.field_with_name("comment").unwrap().metadata()[TYPE_NAME_KEY], "varchar(44)");
    let (_, pages) = recorded("lineitem");
    let first: serde_json::Value = serde_json::from_str(&pages[0]).unwrap();
    let orderkey = col(&b, "orderkey").as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(orderkey.value(0), first[0][0].as_i64().unwrap());
    assert_eq!(show(&b, "comment", 0), first[0][15].as_str().unwrap());
}

#[test]
fn finish_resets_for_the_next_batch() {
    let (columns, pages) = recorded("orders");
    let mut d = BatchDecoder::new(&columns);
    d.decode(&pages[0]).unwrap();
    let first = d.finish().unwrap();
    assert_eq!(d.pending_rows(), 0);
    d.decode(&pages[0]).unwrap();
    let second = d.finish().unwrap();
    assert_eq!(first, second);
    assert_eq!(d.finish().unwrap().num_rows(), 0);
}

#[test]
fn malformed_pages_are_errors_not_panics() {
    let columns = vec![
        Column { name: "a".into(), ty: TrinoType::Integer },
        Column { name: "b".into(), ty: TrinoType::parse("array(date)").unwrap() },
    ];
    let bad = [
        r#"[[1]]"#,
        r#"[[1, [], 3]]"#,
        r#"[["x", []]]"#,
        r#"[[3000000000, []]]"#,
        r#"[[1, ["2024-13-01"]]]"#,
        r#"[[1, {"a": 1}]]"#,
        r#"[[1, []]"#,
        r#"{}"#,
    ];
    for page in bad {
        let mut d = BatchDecoder::new(&columns);
        assert!(d.decode(page).is_err(), "{page} should be rejected");
    }
    let mut d = BatchDecoder::new(&columns);
    assert_eq!(d.decode(r#"[[1, ["2024-01-01", null]], [null, null]]"#).unwrap(), 2);
}

#[test]
fn unknown_types_keep_their_text() {
    let columns = vec![Column { name: "x".into(), ty: TrinoType::parse("HyperLogLog").unwrap() }];
    let mut d = BatchDecoder::new(&columns);
    d.decode(r#"[["AgwBAA=="], [null], [42], [[1, "a"]]]"#).unwrap();
    let b = d.finish().unwrap();
    assert_eq!(show(&b, "x", 0), "AgwBAA==");
    assert!(b.column(0).is_null(1));
    assert_eq!(show(&b, "x", 2), "42");
    assert_eq!(show(&b, "x", 3), r#"[1, "a"]"#);
}

#[test]
fn text_parsers() {
    assert_eq!(parse_decimal("-0.01", 2), Some(-1));
    assert_eq!(parse_decimal("5", 3), Some(5000));
    assert_eq!(parse_decimal("1.234", 2), None, "never silently rounds");
    assert_eq!(parse_decimal("1e5", 0), None);
    assert_eq!(parse_date("+10000-01-01"), Some(2_932_897));
    assert_eq!(parse_date("-0001-12-31"), Some(-719_529));
    assert_eq!(parse_interval_ym("-1-2"), Some(-14));
    assert_eq!(parse_interval_ds("0 00:00:00.001"), Some(1));
    assert_eq!(
        parse_timestamp("2024-01-01 00:00:00.000 Asia/Kolkata", TimeUnit::Millisecond, true),
        Some(1_704_047_400_000)
    );
    assert_eq!(parse_timestamp("2024-01-01 00:00:00 Mars/Olympus", TimeUnit::Millisecond, true), None);
    assert_eq!(parse_timestamp("2024-01-01 00:00:00 UTC", TimeUnit::Millisecond, false), None);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Any JSON value, a few levels deep, with the strings and numbers Trino
    /// pages carry and some it never sends.
    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
            prop_oneof![
                Just("NaN".to_string()),
                Just("Infinity".to_string()),
                Just("-Infinity".to_string()),
                Just("2024-02-29".to_string()),
                Just("2024-02-30 25:61:61.123456789012".to_string()),
                Just("+10000-01-01 00:00:00.000 UTC".to_string()),
                Just("12:34:56.789 +05:30".to_string()),
                Just("99999999999999999999999999999999999999999".to_string()),
                Just("-1.5".to_string()),
                Just("AAEC/w==".to_string()),
                "\\PC{0,12}",
            ]
            .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn any_type() -> impl Strategy<Value = TrinoType> {
        prop::sample::select(vec![
            "boolean",
            "tinyint",
            "smallint",
            "integer",
            "bigint",
            "real",
            "double",
            "decimal(38,10)",
            "decimal(5,2)",
            "varchar",
            "char(3)",
            "varbinary",
            "json",
            "date",
            "time(3)",
            "time(12)",
            "timestamp(0)",
            "timestamp(9)",
            "timestamp(3) with time zone",
            "timestamp(12) with time zone",
            "interval day to second",
            "interval year to month",
            "uuid",
            "ipaddress",
            "array(integer)",
            "map(varchar, array(double))",
            "row(a integer, \"b c\" varchar)",
            "HyperLogLog",
        ])
        .prop_map(|t| TrinoType::parse(t).unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// No page, however malformed, panics the decoder: it decodes or
        /// reports an error.
        #[test]
        fn no_page_panics_the_decoder(types in prop::collection::vec(any_type(), 1..4), rows in prop::collection::vec(prop::collection::vec(json(), 0..5), 0..4)) {
            let columns: Vec<Column> =
                types.into_iter().enumerate().map(|(i, ty)| Column { name: format!("c{i}"), ty }).collect();
            let mut d = BatchDecoder::new(&columns);
            let page = serde_json::Value::Array(rows.into_iter().map(serde_json::Value::Array).collect()).to_string();
            if d.decode(&page).is_ok() {
                let _ = d.finish();
            }
        }

        /// Well-formed values come back exactly.
        #[test]
        fn integers_and_strings_round_trip(values in prop::collection::vec((any::<Option<i64>>(), any::<Option<String>>()), 0..20)) {
            let columns = vec![
                Column { name: "i".into(), ty: TrinoType::BigInt },
                Column { name: "s".into(), ty: TrinoType::Varchar(None) },
            ];
            let page = serde_json::Value::Array(values.iter().map(|(i, s)| serde_json::json!([i, s])).collect());
            let mut d = BatchDecoder::new(&columns);
            d.decode(&page.to_string()).unwrap();
            let b = d.finish().unwrap();
            let ints: Vec<Option<i64>> = b.column(0).as_primitive::<Int64Type>().iter().collect();
            let strs: Vec<Option<String>> = b.column(1).as_string::<i32>().iter().map(|s| s.map(str::to_string)).collect();
            prop_assert_eq!(ints, values.iter().map(|(i, _)| *i).collect::<Vec<_>>());
            prop_assert_eq!(strs, values.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>());
        }
    }
}

#[test]
fn day_numbers_and_civil_dates_turn_into_each_other_over_every_date() {
    // Every 9 973rd day of the whole `date` range, and its ends.
    let days = (i64::from(i32::MIN)..=i64::from(i32::MAX)).step_by(9_973).chain([i64::from(i32::MAX), -1, 0, 1]);
    for day in days {
        let (y, m, d) = super::civil_from_days(day);
        assert_eq!(super::days_from_civil(y, m, d), day, "{y}-{m}-{d}");
    }
    assert_eq!(super::civil_from_days(0), (1970, 1, 1));
    assert_eq!(super::civil_from_days(-719_528), (0, 1, 1));
    assert_eq!(super::civil_from_days(i64::from(i32::MAX)), (5_881_580, 7, 11));
    assert_eq!(super::civil_from_days(i64::from(i32::MIN)), (-5_877_641, 6, 23));
}
