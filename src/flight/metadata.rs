//! Flight SQL metadata, answered by Trino as the requesting user so that
//! Trino's access control decides what each user sees.
//!
//! Catalogs, schemas, tables, columns and table types come from Trino's
//! `system.jdbc` tables; a catalog named in a filter is checked with
//! `SHOW SCHEMAS FROM`, so an unknown or hidden catalog gets Trino's own
//! error. Filter patterns have SQL `LIKE` semantics (`%`, `_`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::metadata::{
    GetCatalogsBuilder, GetDbSchemasBuilder, GetTablesBuilder, SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo,
    XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetTableTypes, CommandGetTables, Nullable, Searchable, SqlInfo,
    SqlNullOrdering, SqlSupportedCaseSensitivity, XdbcDataType, XdbcDatetimeSubcode,
};
use tonic::Status;

use crate::router::{Router, Session};
use crate::sql::quote_literal as lit;

async fn rows(router: &Router, ctx: &Session, sql: &str) -> Result<Vec<RecordBatch>, Status> {
    let (_, batches) = router.execute(ctx, sql).await?;
    Ok(batches)
}

/// Each row's string columns, by position.
fn strings(batches: &[RecordBatch]) -> Vec<Vec<Option<String>>> {
    let mut out = Vec::new();
    for b in batches {
        let cols: Vec<&StringArray> = b.columns().iter().map(|c| c.as_string::<i32>()).collect();
        for i in 0..b.num_rows() {
            out.push(cols.iter().map(|c| c.is_valid(i).then(|| c.value(i).to_string())).collect());
        }
    }
    out
}

/// Fails with Trino's error if `catalog` does not exist or the user may not
/// see it; returns its schemas.
async fn schemas_of(router: &Router, ctx: &Session, catalog: &str) -> Result<Vec<String>, Status> {
    Ok(router.schemas(ctx, catalog).await?)
}

/// The first column of a small listing query, nulls left out.
async fn first_column(router: &Router, ctx: &Session, sql: &str) -> Result<Vec<String>, Status> {
    let batches = rows(router, ctx, sql).await?;
    Ok(strings(&batches).into_iter().filter_map(|r| r.into_iter().next().flatten()).collect())
}

fn conditions(parts: &[(&str, Option<&str>, &str)]) -> String {
    let c: Vec<String> = parts.iter().filter_map(|(col, v, op)| v.map(|v| format!("{col} {op} {}", lit(v)))).collect();
    if c.is_empty() { String::new() } else { format!(" WHERE {}", c.join(" AND ")) }
}

pub async fn catalogs(router: &Router, ctx: &Session, cmd: CommandGetCatalogs) -> Result<RecordBatch, Status> {
    let mut b: GetCatalogsBuilder = cmd.into_builder();
    for c in first_column(router, ctx, "SELECT table_cat FROM system.jdbc.catalogs ORDER BY table_cat").await? {
        b.append(c);
    }
    b.build().map_err(|e| Status::internal(e.to_string()))
}

pub async fn db_schemas(router: &Router, ctx: &Session, cmd: CommandGetDbSchemas) -> Result<RecordBatch, Status> {
    let catalog = cmd.catalog.clone().filter(|c| !c.is_empty());
    let pattern = cmd.db_schema_filter_pattern.clone();
    let mut b: GetDbSchemasBuilder = cmd.into_builder();
    match &catalog {
        Some(c) => {
            for s in schemas_of(router, ctx, c).await? {
                b.append(c, s);
            }
        }
        None => {
            let sql = format!(
                "SELECT table_catalog, table_schem FROM system.jdbc.schemas{}",
                conditions(&[("table_schem", pattern.as_deref(), "LIKE")])
            );
            for r in strings(&rows(router, ctx, &sql).await?) {
                b.append(r[0].clone().unwrap_or_default(), r[1].clone().unwrap_or_default());
            }
        }
    }
    b.build().map_err(|e| Status::internal(e.to_string()))
}

pub async fn tables(router: &Router, ctx: &Session, cmd: CommandGetTables) -> Result<RecordBatch, Status> {
    let catalog = cmd.catalog.clone().filter(|c| !c.is_empty());
    if let Some(c) = &catalog {
        schemas_of(router, ctx, c).await?;
    }
    let filter = conditions(&[
        ("table_cat", catalog.as_deref(), "="),
        ("table_schem", cmd.db_schema_filter_pattern.as_deref(), "LIKE"),
        ("table_name", cmd.table_name_filter_pattern.as_deref(), "LIKE"),
    ]);
    let types = if cmd.table_types.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = cmd.table_types.iter().map(|t| lit(t)).collect();
        format!("{} table_type IN ({})", if filter.is_empty() { " WHERE" } else { " AND" }, list.join(", "))
    };
    let sql = format!("SELECT table_cat, table_schem, table_name, table_type FROM system.jdbc.tables{filter}{types}");
    let listed = strings(&rows(router, ctx, &sql).await?);
    let include_schema = cmd.include_schema;
    let mut columns: HashMap<(String, String, String), Vec<Field>> = HashMap::new();
    if include_schema && !listed.is_empty() {
        let sql = format!(
            "SELECT table_cat, table_schem, table_name, column_name, type_name, is_nullable FROM system.jdbc.columns{filter} \
             ORDER BY table_cat, table_schem, table_name, ordinal_position"
        );
        for r in strings(&rows(router, ctx, &sql).await?) {
            let [cat, schem, table, name, ty, nullable] = <[Option<String>; 6]>::try_from(r).expect("six columns");
            let (cat, schem, table) = (cat.unwrap_or_default(), schem.unwrap_or_default(), table.unwrap_or_default());
            let ty = ty.unwrap_or_default();
            let mut field =
                router.field(&ty, &name.unwrap_or_default()).with_nullable(nullable.as_deref() != Some("NO"));
            let mut md = field.metadata().clone();
            md.insert("ARROW:FLIGHT:SQL:CATALOG_NAME".into(), cat.clone());
            md.insert("ARROW:FLIGHT:SQL:SCHEMA_NAME".into(), schem.clone());
            md.insert("ARROW:FLIGHT:SQL:TABLE_NAME".into(), table.clone());
            md.insert("ARROW:FLIGHT:SQL:IS_AUTO_INCREMENT".into(), "0".into());
            field = field.with_metadata(md);
            columns.entry((cat, schem, table)).or_default().push(field);
        }
    }
    let mut b: GetTablesBuilder = cmd.into_builder();
    for r in listed {
        let [cat, schem, table, kind] = <[Option<String>; 4]>::try_from(r).expect("four columns");
        let key = (cat.unwrap_or_default(), schem.unwrap_or_default(), table.unwrap_or_default());
        let schema = Schema::new(columns.remove(&key).unwrap_or_default());
        b.append(&key.0, &key.1, &key.2, kind.unwrap_or_default(), &schema)
            .map_err(|e| Status::internal(e.to_string()))?;
    }
    b.build().map_err(|e| Status::internal(e.to_string()))
}

pub async fn table_types(router: &Router, ctx: &Session, cmd: CommandGetTableTypes) -> Result<RecordBatch, Status> {
    let mut b = cmd.into_builder();
    for t in first_column(router, ctx, "SELECT table_type FROM system.jdbc.table_types ORDER BY table_type").await? {
        b.append(t);
    }
    b.build().map_err(|e| Status::internal(e.to_string()))
}

/// The schema of GetPrimaryKeys results (Flight SQL spec).
pub static PRIMARY_KEYS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
});

/// The schema of GetImportedKeys, GetExportedKeys and GetCrossReference.
pub static FOREIGN_KEYS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
});

/// Trino has no key constraints: key listings are empty, with the spec's schema.
pub fn empty(schema: &SchemaRef) -> RecordBatch {
    let columns: Vec<ArrayRef> = schema.fields().iter().map(|f| arrow::array::new_empty_array(f.data_type())).collect();
    RecordBatch::try_new(Arc::clone(schema), columns).expect("empty columns match")
}

const KEYWORDS: &[&str] = &[
    "ALTER",
    "AND",
    "AS",
    "BETWEEN",
    "BY",
    "CASE",
    "CAST",
    "CONSTRAINT",
    "CREATE",
    "CROSS",
    "CUBE",
    "CURRENT_CATALOG",
    "CURRENT_DATE",
    "CURRENT_PATH",
    "CURRENT_ROLE",
    "CURRENT_SCHEMA",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "CURRENT_USER",
    "DEALLOCATE",
    "DELETE",
    "DESCRIBE",
    "DISTINCT",
    "DROP",
    "ELSE",
    "END",
    "ESCAPE",
    "EXCEPT",
    "EXECUTE",
    "EXISTS",
    "EXTRACT",
    "FALSE",
    "FOR",
    "FROM",
    "FULL",
    "GROUP",
    "GROUPING",
    "HAVING",
    "IN",
    "INNER",
    "INSERT",
    "INTERSECT",
    "INTO",
    "IS",
    "JOIN",
    "JSON_ARRAY",
    "JSON_EXISTS",
    "JSON_OBJECT",
    "JSON_QUERY",
    "JSON_TABLE",
    "JSON_VALUE",
    "LEFT",
    "LIKE",
    "LISTAGG",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "NATURAL",
    "NORMALIZE",
    "NOT",
    "NULL",
    "ON",
    "OR",
    "ORDER",
    "OUTER",
    "PREPARE",
    "RECURSIVE",
    "RIGHT",
    "ROLLUP",
    "SELECT",
    "SKIP",
    "TABLE",
    "THEN",
    "TRIM",
    "TRUE",
    "UESCAPE",
    "UNION",
    "UNNEST",
    "USING",
    "VALUES",
    "WHEN",
    "WHERE",
    "WITH",
];
const NUMERIC_FUNCTIONS: &[&str] = &[
    "abs", "acos", "asin", "atan", "atan2", "cbrt", "ceiling", "cos", "cosh", "degrees", "e", "exp", "floor", "ln",
    "log10", "log2", "mod", "pi", "power", "radians", "rand", "random", "round", "sign", "sin", "sqrt", "tan", "tanh",
    "truncate",
];
const STRING_FUNCTIONS: &[&str] = &[
    "chr",
    "codepoint",
    "concat",
    "length",
    "levenshtein_distance",
    "lower",
    "lpad",
    "ltrim",
    "position",
    "replace",
    "reverse",
    "rpad",
    "rtrim",
    "split",
    "split_part",
    "starts_with",
    "strpos",
    "substr",
    "substring",
    "trim",
    "upper",
];
const SYSTEM_FUNCTIONS: &[&str] =
    &["current_catalog", "current_schema", "current_user", "coalesce", "if", "nullif", "try", "typeof"];
const DATETIME_FUNCTIONS: &[&str] = &[
    "current_date",
    "current_time",
    "current_timestamp",
    "date_add",
    "date_diff",
    "date_format",
    "date_parse",
    "date_trunc",
    "day",
    "day_of_week",
    "day_of_year",
    "extract",
    "from_iso8601_timestamp",
    "from_unixtime",
    "hour",
    "localtime",
    "localtimestamp",
    "minute",
    "month",
    "now",
    "quarter",
    "second",
    "to_unixtime",
    "week",
    "year",
];

fn list(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The SqlInfo answers real clients read (JDBC reads them all at once).
pub fn sql_info() -> SqlInfoData {
    let mut i = SqlInfoDataBuilder::new();
    i.append(SqlInfo::FlightSqlServerName, "Flightdeck");
    i.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    i.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    i.append(SqlInfo::FlightSqlServerReadOnly, false);
    i.append(SqlInfo::FlightSqlServerSql, true);
    i.append(SqlInfo::FlightSqlServerSubstrait, false);
    // SQL_TRANSACTION_NONE: Trino runs each statement in autocommit.
    i.append(SqlInfo::FlightSqlServerTransaction, 0i32);
    i.append(SqlInfo::FlightSqlServerCancel, true);
    i.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    i.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    i.append(SqlInfo::SqlDdlCatalog, false);
    i.append(SqlInfo::SqlDdlSchema, true);
    i.append(SqlInfo::SqlDdlTable, true);
    i.append(SqlInfo::SqlIdentifierCase, SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32);
    i.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    i.append(SqlInfo::SqlQuotedIdentifierCase, SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32);
    i.append(SqlInfo::SqlAllTablesAreSelectable, false);
    i.append(SqlInfo::SqlNullOrdering, SqlNullOrdering::SqlNullsSortedAtEnd as i32);
    i.append(SqlInfo::SqlKeywords, list(KEYWORDS));
    i.append(SqlInfo::SqlNumericFunctions, list(NUMERIC_FUNCTIONS));
    i.append(SqlInfo::SqlStringFunctions, list(STRING_FUNCTIONS));
    i.append(SqlInfo::SqlSystemFunctions, list(SYSTEM_FUNCTIONS));
    i.append(SqlInfo::SqlDatetimeFunctions, list(DATETIME_FUNCTIONS));
    i.append(SqlInfo::SqlSearchStringEscape, "\\");
    i.append(SqlInfo::SqlExtraNameCharacters, "");
    i.append(SqlInfo::SqlSupportsColumnAliasing, true);
    i.append(SqlInfo::SqlNullPlusNullIsNull, true);
    i.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    i.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    i.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    i.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    // Bitmasks of the spec's enums: GROUP BY unrelated and beyond SELECT.
    i.append(SqlInfo::SqlSupportedGroupBy, 0b11i32);
    i.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    i.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    // Minimum and core grammar; ANSI-92 entry level.
    i.append(SqlInfo::SqlSupportedGrammar, 0b11i32);
    i.append(SqlInfo::SqlAnsi92SupportedLevel, 0b1i32);
    i.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
    // SQL_FULL_OUTER_JOINS.
    i.append(SqlInfo::SqlOuterJoinsSupportLevel, 2i32);
    i.append(SqlInfo::SqlSchemaTerm, "schema");
    i.append(SqlInfo::SqlProcedureTerm, "procedure");
    i.append(SqlInfo::SqlCatalogTerm, "catalog");
    i.append(SqlInfo::SqlCatalogAtStart, true);
    i.append(SqlInfo::SqlSchemasSupportedActions, 0b111i32);
    i.append(SqlInfo::SqlCatalogsSupportedActions, 0b111i32);
    i.append(SqlInfo::SqlSupportedPositionedCommands, 0i32);
    i.append(SqlInfo::SqlSelectForUpdateSupported, false);
    i.append(SqlInfo::SqlStoredProceduresSupported, false);
    // Comparisons, EXISTS, IN and quantified subqueries.
    i.append(SqlInfo::SqlSupportedSubqueries, 0b1111i32);
    i.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    // UNION and UNION ALL.
    i.append(SqlInfo::SqlSupportedUnions, 0b11i32);
    for limit in [
        SqlInfo::SqlMaxBinaryLiteralLength,
        SqlInfo::SqlMaxCharLiteralLength,
        SqlInfo::SqlMaxColumnNameLength,
        SqlInfo::SqlMaxColumnsInGroupBy,
        SqlInfo::SqlMaxColumnsInIndex,
        SqlInfo::SqlMaxColumnsInOrderBy,
        SqlInfo::SqlMaxColumnsInSelect,
        SqlInfo::SqlMaxColumnsInTable,
        SqlInfo::SqlMaxConnections,
        SqlInfo::SqlMaxCursorNameLength,
        SqlInfo::SqlMaxIndexLength,
        SqlInfo::SqlDbSchemaNameLength,
        SqlInfo::SqlMaxProcedureNameLength,
        SqlInfo::SqlMaxCatalogNameLength,
        SqlInfo::SqlMaxRowSize,
        SqlInfo::SqlMaxStatementLength,
        SqlInfo::SqlMaxStatements,
        SqlInfo::SqlMaxTableNameLength,
        SqlInfo::SqlMaxTablesInSelect,
        SqlInfo::SqlMaxUsernameLength,
    ] {
        // 0: no limit known.
        i.append(limit, 0i64);
    }
    i.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, true);
    i.append(SqlInfo::SqlDefaultTransactionIsolation, 0i32);
    i.append(SqlInfo::SqlTransactionsSupported, false);
    i.append(SqlInfo::SqlSupportedTransactionsIsolationLevels, 0i32);
    i.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
    i.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, true);
    i.append(SqlInfo::SqlSupportedResultSetTypes, 0b10i32);
    i.append(SqlInfo::SqlBatchUpdatesSupported, false);
    i.append(SqlInfo::SqlSavepointsSupported, false);
    i.append(SqlInfo::SqlNamedParametersSupported, false);
    i.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    i.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    i.build().expect("static SqlInfo is valid")
}

/// One XDBC type entry.
fn xdbc(
    name: &str,
    data_type: XdbcDataType,
    column_size: Option<i32>,
    prefix: Option<&str>,
    params: Option<&str>,
) -> XdbcTypeInfo {
    let subcode = match data_type {
        // SQL_CODE_DATE shares its value (1) with SQL_CODE_YEAR.
        XdbcDataType::XdbcDate => Some(XdbcDatetimeSubcode::XdbcSubcodeYear),
        XdbcDataType::XdbcTime => Some(XdbcDatetimeSubcode::XdbcSubcodeTime),
        XdbcDataType::XdbcTimestamp => Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
        _ => None,
    };
    let numeric = matches!(
        data_type,
        XdbcDataType::XdbcTinyint
            | XdbcDataType::XdbcSmallint
            | XdbcDataType::XdbcInteger
            | XdbcDataType::XdbcBigint
            | XdbcDataType::XdbcFloat
            | XdbcDataType::XdbcDouble
            | XdbcDataType::XdbcDecimal
    );
    XdbcTypeInfo {
        type_name: name.to_string(),
        data_type,
        column_size,
        literal_prefix: prefix.map(str::to_string),
        literal_suffix: prefix.map(|_| "'".to_string()),
        create_params: params.map(|p| p.split(',').map(str::to_string).collect()),
        nullable: Nullable::NullabilityNullable,
        case_sensitive: matches!(data_type, XdbcDataType::XdbcVarchar | XdbcDataType::XdbcChar),
        searchable: Searchable::Full,
        unsigned_attribute: numeric.then_some(false),
        fixed_prec_scale: data_type == XdbcDataType::XdbcDecimal,
        auto_increment: numeric.then_some(false),
        local_type_name: Some(name.to_string()),
        minimum_scale: (data_type == XdbcDataType::XdbcDecimal).then_some(0),
        maximum_scale: (data_type == XdbcDataType::XdbcDecimal).then_some(38),
        sql_data_type: if subcode.is_some() { XdbcDataType::XdbcDatetime } else { data_type },
        datetime_subcode: subcode,
        num_prec_radix: numeric.then_some(10),
        interval_precision: None,
    }
}

/// Trino's types as XDBC types.
pub fn xdbc_type_info() -> XdbcTypeInfoData {
    use XdbcDataType as T;
    let mut b = XdbcTypeInfoDataBuilder::new();
    for info in [
        xdbc("boolean", T::XdbcBit, Some(1), None, None),
        xdbc("tinyint", T::XdbcTinyint, Some(3), None, None),
        xdbc("smallint", T::XdbcSmallint, Some(5), None, None),
        xdbc("integer", T::XdbcInteger, Some(10), None, None),
        xdbc("bigint", T::XdbcBigint, Some(19), None, None),
        xdbc("real", T::XdbcFloat, Some(24), None, None),
        xdbc("double", T::XdbcDouble, Some(53), None, None),
        xdbc("decimal", T::XdbcDecimal, Some(38), None, Some("precision,scale")),
        xdbc("varchar", T::XdbcVarchar, Some(i32::MAX), Some("'"), Some("length")),
        xdbc("char", T::XdbcChar, Some(65_536), Some("'"), Some("length")),
        xdbc("varbinary", T::XdbcVarbinary, Some(i32::MAX), Some("X'"), None),
        xdbc("json", T::XdbcVarchar, Some(i32::MAX), Some("JSON '"), None),
        xdbc("date", T::XdbcDate, Some(10), Some("DATE '"), None),
        xdbc("time", T::XdbcTime, Some(21), Some("TIME '"), Some("precision")),
        xdbc("timestamp", T::XdbcTimestamp, Some(32), Some("TIMESTAMP '"), Some("precision")),
        xdbc("timestamp with time zone", T::XdbcTimestamp, Some(40), Some("TIMESTAMP '"), Some("precision")),
        xdbc("uuid", T::XdbcVarchar, Some(36), Some("UUID '"), None),
        xdbc("ipaddress", T::XdbcVarchar, Some(39), Some("IPADDRESS '"), None),
    ] {
        b.append(info);
    }
    b.build().expect("static XDBC type info is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_metadata_builds() {
        let info = sql_info();
        let batch = arrow_flight::sql::CommandGetSqlInfo { info: vec![] }.into_builder(&info).build().unwrap();
        assert!(batch.num_rows() > 60, "{} SqlInfo entries", batch.num_rows());
        let types = xdbc_type_info();
        assert_eq!(types.record_batch(None).unwrap().num_rows(), 18);
        assert_eq!(empty(&PRIMARY_KEYS_SCHEMA).num_rows(), 0);
        assert_eq!(conditions(&[("a", Some("x%"), "LIKE"), ("b", None, "=")]), " WHERE a LIKE 'x%'");
    }
}
