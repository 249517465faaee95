//! The domain tables, written once for both backends.
//!
//! The SQL here runs unchanged on SQLite and PostgreSQL (`$N` placeholders, `ON CONFLICT`,
//! `RETURNING`). What differs is passed in by each backend: its connection and row types,
//! how a time is bound (fixed-width UTC text on SQLite, `TIMESTAMPTZ` on PostgreSQL) and read
//! back, and whether a row is locked while a decision is made about it (PostgreSQL, where
//! several replicas write at once; SQLite has a single writer).
//!
//! Every write is idempotent, so replaying a callback changes nothing, and every write that
//! changes state reports it as an event for the live stream.
//!
//! Statements built for a batch (`QueryBuilder`) have a text that depends on the batch's
//! size. SQLite does not keep them in its statement cache (`persist_batches: false`): with
//! batches of up to 1024 callbacks, a hundred cached variants held tens of MiB of the
//! receiver's memory. PostgreSQL keeps them: there they are the server's memory, and
//! parsing and planning each anew cost the server CPU the journal needs.

/// Expands to the write functions for one backend.
macro_rules! domain_writes {
    (
        conn: $Conn:ty,
        row: $Row:ty,
        bind_time: $time:path,
        read_time: $read_time:path,
        lock: $lock:literal,
        release_lease: $release_lease:literal,
        persist_batches: $persist_batches:literal $(,)?
    ) => {
        use $crate::callback::payload::{
            CapabilityReport, ConsentKind, ConsentReport, ContactChange, ContactEvent,
            ContactState, ConversationChange, ConversationState, DeliveryReport,
            IdentityDuplication, InboundMessage, SmsBatchReport, SmsDeliveryReport, SmsInbound,
            SubmittedMessage,
        };
        use $crate::callback::status::{
            DeliveryStatus, ReportTime, StatusReport, sms_supersedes, supersedes,
        };
        use $crate::store::{Effect, NewEvent, PendingCallback, Plan, Processed, Work};

        /// The `callbacks` columns a journaled callback fills, in the order
        /// `push_journal_columns` binds them.
        const JOURNAL_COLUMNS: &str = "received_at, next_attempt_at, api, trigger, dedupe_key, \
             app_id, project_id, message_id, body, nonce, signature_timestamp";

        /// Binds `cb`'s values for `JOURNAL_COLUMNS` into a row of a multi-row insert.
        fn push_journal_columns<'args>(
            row: &mut sqlx::query_builder::Separated<
                '_,
                'args,
                <$Conn as sqlx::Connection>::Database,
                &'static str,
            >,
            cb: &'args $crate::store::NewCallback,
        ) {
            row.push_bind($time(&cb.received_at))
                .push_bind($time(&cb.received_at))
                .push_bind(cb.api.as_str())
                .push_bind(cb.trigger.as_str())
                .push_bind(&cb.dedupe_key)
                .push_bind(&cb.app_id)
                .push_bind(&cb.project_id)
                .push_bind(&cb.message_id)
                .push_bind(&cb.body)
                .push_bind(&cb.nonce)
                .push_bind(cb.signature_timestamp);
        }

        /// Whether a callback with this dedupe key is journaled.
        async fn journaled(conn: &mut $Conn, dedupe_key: &str) -> Result<bool, sqlx::Error> {
            let found = sqlx::query("SELECT 1 FROM callbacks WHERE dedupe_key = $1")
                .bind(dedupe_key)
                .fetch_optional(&mut *conn)
                .await?;
            Ok(found.is_some())
        }

        /// Makes every unprocessed callback due now; returns how many are pending.
        async fn make_all_pending_due(conn: &mut $Conn, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
            sqlx::query(
                "UPDATE callbacks SET next_attempt_at = $1 \
                 WHERE processed_at IS NULL AND next_attempt_at > $1",
            )
            .bind($time(&now))
            .execute(&mut *conn)
            .await?;
            let pending: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM callbacks WHERE processed_at IS NULL")
                    .fetch_one(&mut *conn)
                    .await?;
            Ok(u64::try_from(pending).unwrap_or_default())
        }

        /// Processes a batch inside the caller's transaction, in `order`. `together`: one
        /// claim statement and bulk writes, any failure failing the whole batch (the caller
        /// then retries it one by one). Otherwise each callback in a savepoint of its own: a
        /// failure undoes that callback's effects only and records it for retry. Returns one
        /// result per callback (in input order) and the state changes.
        async fn process_batch(
            conn: &mut $Conn,
            work: &[Work],
            order: &[usize],
            now: DateTime<Utc>,
            together: bool,
        ) -> Result<(Vec<Processed>, Vec<(i64, NewEvent)>), sqlx::Error> {
            if together {
                return process_together(conn, work, order, now).await;
            }
            let mut results = vec![Processed::AlreadyProcessed; work.len()];
            let mut batch_events = Vec::new();
            for &index in order {
                let item = &work[index];
                let mut out = Outputs::default();
                let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
                results[index] = match process_one(&mut savepoint, item, now, &mut out).await {
                    Ok(result) => {
                        savepoint.commit().await?;
                        batch_events.extend(out.events.into_iter().map(|e| (item.callback.id, e)));
                        result
                    }
                    // The database itself failing (disk full, connection lost, deadlock) is
                    // not this callback's fault: fail the batch, to be retried as a whole,
                    // without counting it against the callback's attempts.
                    Err(error) if $crate::store::is_environmental(&error) => return Err(error),
                    Err(error) => {
                        savepoint.rollback().await?;
                        let message = error.to_string();
                        record_failure(&mut *conn, item, &message).await?;
                        Processed::Failed(message)
                    }
                };
            }
            Ok((results, batch_events))
        }

        /// The whole batch in one go: claims every callback with one statement, then applies
        /// the plans of those it claimed. Any error fails the whole attempt.
        async fn process_together(
            conn: &mut $Conn,
            work: &[Work],
            order: &[usize],
            now: DateTime<Utc>,
        ) -> Result<(Vec<Processed>, Vec<(i64, NewEvent)>), sqlx::Error> {
            let mut claim = sqlx::QueryBuilder::new(concat!(
                "UPDATE callbacks SET attempts = attempts + 1, last_error = NULL",
                $release_lease,
                ", processed_at = "
            ));
            claim.push_bind($time(&now)).push(" WHERE processed_at IS NULL AND id IN (");
            let mut ids = claim.separated(", ");
            for item in work {
                ids.push_bind(item.callback.id);
            }
            claim.push(") RETURNING id");
            let claimed: std::collections::HashSet<i64> = claim
                .build_query_scalar::<i64>()
                .persistent($persist_batches)
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .collect();
            let mut results = vec![Processed::AlreadyProcessed; work.len()];
            let mut batch_events = Vec::new();
            let mut history = Vec::new();
            // Delivery reports, the bulk of the traffic, first and together: a few statements
            // for the whole batch instead of two per report. App events before messages, each
            // in key order: the lock order every replica follows.
            for table in [&APP_EVENTS, &MESSAGES] {
                let reports: Vec<(&DeliveryReport, &PendingCallback)> = order
                    .iter()
                    .map(|&i| &work[i])
                    .filter(|item| claimed.contains(&item.callback.id))
                    .filter_map(|item| match &item.plan {
                        Plan::Apply(effects) => Some(effects.iter().filter_map(move |e| match e {
                            Effect::MessageStatus(r) if table.table == "messages" => Some((r, &item.callback)),
                            Effect::AppEventStatus(r) if table.table == "app_events" => Some((r, &item.callback)),
                            _ => None,
                        })),
                        Plan::Unprocessable(_) => None,
                    })
                    .flatten()
                    .collect();
                apply_status_reports_together(conn, table, &reports, now, &mut batch_events, &mut history)
                    .await?;
            }
            for &index in order {
                let item = &work[index];
                if !claimed.contains(&item.callback.id) {
                    continue;
                }
                results[index] = match &item.plan {
                    Plan::Unprocessable(reason) => {
                        sqlx::query("UPDATE callbacks SET last_error = $1 WHERE id = $2")
                            .bind(reason)
                            .bind(item.callback.id)
                            .execute(&mut *conn)
                            .await?;
                        Processed::Unprocessable(reason.clone())
                    }
                    Plan::Apply(effects) => {
                        let mut out = Outputs::default();
                        for effect in effects {
                            if matches!(effect, Effect::MessageStatus(_) | Effect::AppEventStatus(_)) {
                                continue; // applied together above
                            }
                            apply_effect(conn, effect, &item.callback, now, &mut out).await?;
                        }
                        batch_events.extend(out.events.into_iter().map(|e| (item.callback.id, e)));
                        history.extend(out.history);
                        Processed::Applied
                    }
                };
            }
            insert_history(conn, &history).await?;
            Ok((results, batch_events))
        }

        /// What applying effects produces besides its direct writes: state changes for the
        /// outbox, and history rows, written in bulk at the end (one statement per batch
        /// instead of one per report).
        #[derive(Default)]
        struct Outputs {
            events: Vec<NewEvent>,
            history: Vec<HistoryRow>,
        }

        /// One delivery report for `message_status_history` or `app_event_status_history`.
        struct HistoryRow {
            table: &'static str,
            key: &'static str,
            id: String,
            status: String,
            status_at: DateTime<Utc>,
            accepted_at: Option<DateTime<Utc>>,
            channel: Option<String>,
            reason_code: Option<String>,
            reason_description: Option<String>,
            callback_id: i64,
            applied: bool,
            recorded_at: DateTime<Utc>,
        }

        /// Writes history rows, one multi-row insert per table and chunk. Keyed by callback,
        /// so writing a report twice (a replay) adds nothing.
        async fn insert_history(conn: &mut $Conn, rows: &[HistoryRow]) -> Result<(), sqlx::Error> {
            const ROWS_PER_INSERT: usize = 256;
            for table in [MESSAGES.history, APP_EVENTS.history] {
                let rows: Vec<&HistoryRow> = rows.iter().filter(|r| r.table == table).collect();
                for chunk in rows.chunks(ROWS_PER_INSERT) {
                    let mut insert = sqlx::QueryBuilder::new(format!(
                        "INSERT INTO {} ({}, status, status_at, accepted_at, channel, reason_code, \
                         reason_description, callback_id, applied, recorded_at) ",
                        table, chunk[0].key
                    ));
                    insert.push_values(chunk, |mut row, h| {
                        row.push_bind(h.id.clone())
                            .push_bind(h.status.clone())
                            .push_bind($time(&h.status_at))
                            .push_bind(h.accepted_at.as_ref().map($time))
                            .push_bind(h.channel.clone())
                            .push_bind(h.reason_code.clone())
                            .push_bind(h.reason_description.clone())
                            .push_bind(h.callback_id)
                            .push_bind(h.applied)
                            .push_bind($time(&h.recorded_at));
                    });
                    insert.push(" ON CONFLICT (callback_id) DO NOTHING");
                    insert.build().persistent($persist_batches).execute(&mut *conn).await?;
                }
            }
            Ok(())
        }

        /// The tables a delivery report can be about: messages, or events the app sent.
        struct StatusTable {
            table: &'static str,
            key: &'static str,
            history: &'static str,
            ensure_row: &'static str,
            upsert_returning_status: &'static str,
            event: &'static str,
            /// Messages need a direction on insert; app events have none.
            direction: Option<&'static str>,
        }

        const MESSAGES: StatusTable = StatusTable {
            table: "messages",
            key: "message_id",
            history: "message_status_history",
            ensure_row: "INSERT INTO messages (message_id, direction, created_at, updated_at) \
                         VALUES ($1, 'outbound', $2, $2) ON CONFLICT (message_id) DO NOTHING",
            upsert_returning_status: "INSERT INTO messages (message_id, direction, created_at, updated_at) \
                VALUES ($1, 'outbound', $2, $2) ON CONFLICT (message_id) \
                DO UPDATE SET message_id = excluded.message_id \
                RETURNING status, status_at, status_accepted_at, channel, identity, conversation_id, contact_id",
            event: "message.status",
            direction: Some("outbound"),
        };

        const APP_EVENTS: StatusTable = StatusTable {
            table: "app_events",
            key: "event_id",
            history: "app_event_status_history",
            ensure_row: "INSERT INTO app_events (event_id, created_at, updated_at) \
                         VALUES ($1, $2, $2) ON CONFLICT (event_id) DO NOTHING",
            upsert_returning_status: "INSERT INTO app_events (event_id, created_at, updated_at) \
                VALUES ($1, $2, $2) ON CONFLICT (event_id) \
                DO UPDATE SET event_id = excluded.event_id \
                RETURNING status, status_at, status_accepted_at, channel, identity, conversation_id, contact_id",
            event: "event.status",
            direction: None,
        };

        /// Applies one effect; state changes are appended to `events`.
        async fn apply_effect(
            conn: &mut $Conn,
            effect: &Effect,
            callback: &PendingCallback,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            match effect {
                Effect::MessageStatus(report) => {
                    apply_status_report(conn, &MESSAGES, report, callback, now, out).await
                }
                Effect::AppEventStatus(report) => {
                    apply_status_report(conn, &APP_EVENTS, report, callback, now, out).await
                }
                Effect::InboundMessage(message) => {
                    apply_inbound_message(conn, message, now, out).await
                }
                Effect::MessageSubmitted(submitted) => {
                    apply_submitted(conn, submitted, callback, now, out).await
                }
                Effect::ContactEvent(event) => {
                    apply_contact_event(conn, event, callback, now, out).await
                }
                Effect::Consent(consent) => apply_consent(conn, consent, callback, now, out).await,
                Effect::Capability(capability) => {
                    apply_capability(conn, capability, callback, now, out).await
                }
                Effect::Contact { change, at } => {
                    let at = at.unwrap_or(callback.received_at);
                    apply_contact(conn, change, at, now, out).await
                }
                Effect::Conversation { change, state, at } => {
                    let at = at.unwrap_or(callback.received_at);
                    apply_conversation(conn, *change, state, at, now, out).await
                }
                Effect::IdentityDuplications { duplications, at } => {
                    let at = at.unwrap_or(callback.received_at);
                    apply_duplications(conn, duplications, callback.id, at, out).await
                }
                Effect::SmsDelivery(report) => {
                    apply_sms_delivery(conn, report, callback, now, out).await
                }
                Effect::SmsBatch(batch) => apply_sms_batch(conn, batch, callback.id, now, out).await,
                Effect::SmsInbound(message) => {
                    apply_sms_inbound(conn, message, callback.id, now, out).await
                }
            }
        }

        /// A row of a status table as the batch sees it, changes included.
        struct StatusRow {
            status: Option<String>,
            status_at: Option<DateTime<Utc>>,
            status_accepted_at: Option<DateTime<Utc>>,
            reason_code: Option<String>,
            reason_description: Option<String>,
            channel: Option<String>,
            identity: Option<String>,
            conversation_id: Option<String>,
            contact_id: Option<String>,
            changed: bool,
        }

        /// Rows per multi-row statement in the bulk path (well under both backends' limits
        /// on bound parameters).
        const ROWS_PER_STATEMENT: usize = 256;

        /// Every delivery report of a batch for one table, by the same rules as one at a
        /// time: create the rows that are missing, read (and on PostgreSQL lock) their state
        /// in key order, decide each report in arrival order in memory, then write back the
        /// rows that changed in one statement per chunk.
        async fn apply_status_reports_together(
            conn: &mut $Conn,
            table: &StatusTable,
            reports: &[(&DeliveryReport, &PendingCallback)],
            now: DateTime<Utc>,
            events: &mut Vec<(i64, NewEvent)>,
            history: &mut Vec<HistoryRow>,
        ) -> Result<(), sqlx::Error> {
            if reports.is_empty() {
                return Ok(());
            }
            let mut ids: Vec<&str> = reports.iter().map(|(r, _)| r.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            let mut rows = std::collections::HashMap::with_capacity(ids.len());
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let columns = match table.direction {
                    Some(_) => format!("{}, direction, created_at, updated_at", table.key),
                    None => format!("{}, created_at, updated_at", table.key),
                };
                let mut ensure = sqlx::QueryBuilder::new(format!("INSERT INTO {} ({columns}) ", table.table));
                ensure.push_values(chunk, |mut row, id| {
                    row.push_bind(id.to_string());
                    if let Some(direction) = table.direction {
                        row.push_bind(direction);
                    }
                    row.push_bind($time(&now)).push_bind($time(&now));
                });
                ensure.push(format!(" ON CONFLICT ({}) DO NOTHING", table.key));
                ensure.build().persistent($persist_batches).execute(&mut *conn).await?;

                let mut select = sqlx::QueryBuilder::new(format!(
                    "SELECT {} AS id, status, status_at, status_accepted_at, reason_code, \
                     reason_description, channel, identity, conversation_id, contact_id \
                     FROM {} WHERE {} IN (",
                    table.key, table.table, table.key
                ));
                let mut list = select.separated(", ");
                for id in chunk {
                    list.push_bind(id.to_string());
                }
                select.push(format!(") ORDER BY {}{}", table.key, $lock));
                for row in select.build().persistent($persist_batches).fetch_all(&mut *conn).await? {
                    let id: String = row.try_get("id")?;
                    rows.insert(id, StatusRow {
                        status: row.try_get("status")?,
                        status_at: $read_time(&row, "status_at")?,
                        status_accepted_at: $read_time(&row, "status_accepted_at")?,
                        reason_code: row.try_get("reason_code")?,
                        reason_description: row.try_get("reason_description")?,
                        channel: row.try_get("channel")?,
                        identity: row.try_get("identity")?,
                        conversation_id: row.try_get("conversation_id")?,
                        contact_id: row.try_get("contact_id")?,
                        changed: false,
                    });
                }
            }
            for (report, callback) in reports {
                let Some(row) = rows.get_mut(&report.id) else { continue };
                let incoming = StatusReport {
                    status: report.status.clone(),
                    time: ReportTime::new(report.event_time, report.accepted_time, callback.received_at),
                };
                let current = match (row.status.as_deref(), row.status_at) {
                    (Some(status), Some(at)) => Some(StatusReport {
                        status: DeliveryStatus::parse(status),
                        time: ReportTime { at, accepted: row.status_accepted_at },
                    }),
                    _ => None,
                };
                let applied = supersedes(current.as_ref(), &incoming);
                let previous_status = row.status.clone();
                if applied {
                    row.status = Some(report.status.as_str().to_owned());
                    row.status_at = Some(incoming.time.at);
                    row.status_accepted_at = incoming.time.accepted;
                    row.reason_code = report.reason_code.clone();
                    row.reason_description = report.reason_description.clone();
                    row.changed = true;
                }
                for (known, incoming) in [
                    (&mut row.channel, &report.channel),
                    (&mut row.identity, &report.identity),
                    (&mut row.conversation_id, &report.conversation_id),
                    (&mut row.contact_id, &report.contact_id),
                ] {
                    // A newer status brings its own channel details; a late one only fills blanks.
                    if incoming.is_some() && (applied || known.is_none()) && known != incoming {
                        *known = incoming.clone();
                        row.changed = true;
                    }
                }
                let (row_history, event) =
                    report_outcome(table, report, callback.id, &incoming, applied, previous_status, now);
                history.push(row_history);
                events.extend(event.map(|event| (callback.id, event)));
            }
            let changed: Vec<(&String, &StatusRow)> = {
                let mut changed: Vec<_> = rows.iter().filter(|(_, row)| row.changed).collect();
                changed.sort_by(|a, b| a.0.cmp(b.0));
                changed
            };
            for chunk in changed.chunks(ROWS_PER_STATEMENT) {
                let mut write = sqlx::QueryBuilder::new(format!(
                    "INSERT INTO {} ({}, status, status_at, status_accepted_at, reason_code, \
                     reason_description, channel, identity, conversation_id, contact_id, \
                     {}created_at, updated_at) ",
                    table.table,
                    table.key,
                    if table.direction.is_some() { "direction, " } else { "" }
                ));
                write.push_values(chunk, |mut values, (id, row)| {
                    values
                        .push_bind(id.to_string())
                        .push_bind(row.status.clone())
                        .push_bind(row.status_at.as_ref().map($time))
                        .push_bind(row.status_accepted_at.as_ref().map($time))
                        .push_bind(row.reason_code.clone())
                        .push_bind(row.reason_description.clone())
                        .push_bind(row.channel.clone())
                        .push_bind(row.identity.clone())
                        .push_bind(row.conversation_id.clone())
                        .push_bind(row.contact_id.clone());
                    if let Some(direction) = table.direction {
                        values.push_bind(direction);
                    }
                    values.push_bind($time(&now)).push_bind($time(&now));
                });
                write.push(format!(
                    " ON CONFLICT ({}) DO UPDATE SET status = excluded.status, \
                     status_at = excluded.status_at, status_accepted_at = excluded.status_accepted_at, \
                     reason_code = excluded.reason_code, reason_description = excluded.reason_description, \
                     channel = excluded.channel, identity = excluded.identity, \
                     conversation_id = excluded.conversation_id, contact_id = excluded.contact_id, \
                     updated_at = excluded.updated_at",
                    table.key
                ));
                write.build().persistent($persist_batches).execute(&mut *conn).await?;
            }
            Ok(())
        }

        async fn apply_status_report(
            conn: &mut $Conn,
            table: &StatusTable,
            report: &DeliveryReport,
            callback: &PendingCallback,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let incoming = StatusReport {
                status: report.status.clone(),
                time: ReportTime::new(report.event_time, report.accepted_time, callback.received_at),
            };
            // One statement creates the row if needed and returns its current status. On
            // PostgreSQL the upsert also locks the row, so replicas deciding the status of one
            // message take turns.
            let row = sqlx::query(table.upsert_returning_status)
                .bind(&report.id)
                .bind($time(&now))
                .fetch_one(&mut *conn)
                .await?;
            let current_status: Option<String> = row.try_get("status")?;
            let current = match (current_status.as_deref(), $read_time(&row, "status_at")?) {
                (Some(status), Some(at)) => Some(StatusReport {
                    status: DeliveryStatus::parse(status),
                    time: ReportTime { at, accepted: $read_time(&row, "status_accepted_at")? },
                }),
                _ => None,
            };
            let applied = supersedes(current.as_ref(), &incoming);
            if applied {
                sqlx::query(&format!(
                    "UPDATE {} SET status = $1, status_at = $2, status_accepted_at = $3, \
                     reason_code = $4, reason_description = $5, \
                     channel = COALESCE($6, channel), identity = COALESCE($7, identity), \
                     conversation_id = COALESCE($8, conversation_id), \
                     contact_id = COALESCE($9, contact_id), updated_at = $10 WHERE {} = $11",
                    table.table, table.key
                ))
                .bind(report.status.as_str())
                .bind($time(&incoming.time.at))
                .bind(incoming.time.accepted.as_ref().map($time))
                .bind(&report.reason_code)
                .bind(&report.reason_description)
                .bind(&report.channel)
                .bind(&report.identity)
                .bind(&report.conversation_id)
                .bind(&report.contact_id)
                .bind($time(&now))
                .bind(&report.id)
                .execute(&mut *conn)
                .await?;
            } else if fills_a_blank(&row, report)? {
                // Not the current status, but it tells us something we did not know.
                sqlx::query(&format!(
                    "UPDATE {} SET channel = COALESCE(channel, $1), identity = COALESCE(identity, $2), \
                     conversation_id = COALESCE(conversation_id, $3), \
                     contact_id = COALESCE(contact_id, $4), updated_at = $5 WHERE {} = $6 \
                     AND ((channel IS NULL AND $1 IS NOT NULL) OR (identity IS NULL AND $2 IS NOT NULL) \
                     OR (conversation_id IS NULL AND $3 IS NOT NULL) \
                     OR (contact_id IS NULL AND $4 IS NOT NULL))",
                    table.table, table.key
                ))
                .bind(&report.channel)
                .bind(&report.identity)
                .bind(&report.conversation_id)
                .bind(&report.contact_id)
                .bind($time(&now))
                .bind(&report.id)
                .execute(&mut *conn)
                .await?;
            }
            let (history, event) =
                report_outcome(table, report, callback.id, &incoming, applied, current_status, now);
            out.history.push(history);
            out.events.extend(event);
            Ok(())
        }

        /// What a delivery report leaves behind besides the status row: its history entry, and
        /// the state change for the stream if it became the current status.
        fn report_outcome(
            table: &StatusTable,
            report: &DeliveryReport,
            callback_id: i64,
            incoming: &StatusReport,
            applied: bool,
            previous_status: Option<String>,
            now: DateTime<Utc>,
        ) -> (HistoryRow, Option<NewEvent>) {
            let history = HistoryRow {
                table: table.history,
                key: table.key,
                id: report.id.clone(),
                status: report.status.as_str().to_owned(),
                status_at: incoming.time.at,
                accepted_at: incoming.time.accepted,
                channel: report.channel.clone(),
                reason_code: report.reason_code.clone(),
                reason_description: report.reason_description.clone(),
                callback_id,
                applied,
                recorded_at: now,
            };
            let event = applied.then(|| {
                let mut payload = serde_json::json!({
                    "status": report.status.as_str(),
                    "previous_status": previous_status,
                    "status_at": incoming.time.at,
                    "channel": report.channel,
                    "identity": report.identity,
                    "reason_code": report.reason_code,
                    "reason_description": report.reason_description,
                });
                payload[table.key] = serde_json::json!(report.id);
                NewEvent { kind: table.event, payload }
            });
            (history, event)
        }

        /// Whether the report knows a channel, identity or id the row is missing.
        fn fills_a_blank(row: &$Row, report: &DeliveryReport) -> Result<bool, sqlx::Error> {
            let missing = |column: &str, incoming: &Option<String>| -> Result<bool, sqlx::Error> {
                Ok(incoming.is_some() && row.try_get::<Option<String>, _>(column)?.is_none())
            };
            Ok(missing("channel", &report.channel)?
                || missing("identity", &report.identity)?
                || missing("conversation_id", &report.conversation_id)?
                || missing("contact_id", &report.contact_id)?)
        }

        async fn apply_inbound_message(
            conn: &mut $Conn,
            message: &InboundMessage,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let at = message.event_time.or(message.accepted_time);
            let inserted = sqlx::query(
                "INSERT INTO messages (message_id, direction, status_at, status_accepted_at, channel, \
                 identity, conversation_id, contact_id, text, content, created_at, updated_at) \
                 VALUES ($1, 'inbound', $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                 ON CONFLICT (message_id) DO NOTHING",
            )
            .bind(&message.message_id)
            .bind(at.as_ref().map($time))
            .bind(message.accepted_time.as_ref().map($time))
            .bind(&message.channel)
            .bind(&message.identity)
            .bind(&message.conversation_id)
            .bind(&message.contact_id)
            .bind(&message.text)
            .bind(&message.content)
            .bind($time(&now))
            .execute(&mut *conn)
            .await?;
            if inserted.rows_affected() > 0 {
                out.events.push(NewEvent {
                    kind: "message.inbound",
                    payload: serde_json::json!({
                        "message_id": message.message_id,
                        "channel": message.channel,
                        "identity": message.identity,
                        "conversation_id": message.conversation_id,
                        "contact_id": message.contact_id,
                        "text": message.text,
                        "at": at,
                    }),
                });
            }
            Ok(())
        }

        /// A submit is recorded (earliest `submitted_at`, a history entry) but is never a
        /// status, so it cannot move one backwards.
        async fn apply_submitted(
            conn: &mut $Conn,
            submitted: &SubmittedMessage,
            callback: &PendingCallback,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let at = submitted.submitted_at.unwrap_or(callback.received_at);
            sqlx::query(MESSAGES.ensure_row)
                .bind(&submitted.message_id)
                .bind($time(&now))
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "UPDATE messages SET \
                 submitted_at = CASE WHEN submitted_at IS NULL OR submitted_at > $1 THEN $1 ELSE submitted_at END, \
                 channel = COALESCE(channel, $2), identity = COALESCE(identity, $3), \
                 conversation_id = COALESCE(conversation_id, $4), contact_id = COALESCE(contact_id, $5), \
                 content = COALESCE(content, $6), updated_at = $7 WHERE message_id = $8 \
                 AND (submitted_at IS NULL OR submitted_at > $1 \
                 OR (channel IS NULL AND $2 IS NOT NULL) OR (identity IS NULL AND $3 IS NOT NULL) \
                 OR (conversation_id IS NULL AND $4 IS NOT NULL) \
                 OR (contact_id IS NULL AND $5 IS NOT NULL) OR (content IS NULL AND $6 IS NOT NULL))",
            )
            .bind($time(&at))
            .bind(&submitted.channel)
            .bind(&submitted.identity)
            .bind(&submitted.conversation_id)
            .bind(&submitted.contact_id)
            .bind(&submitted.content)
            .bind($time(&now))
            .bind(&submitted.message_id)
            .execute(&mut *conn)
            .await?;
            let recorded = sqlx::query(
                "INSERT INTO message_status_history (message_id, status, status_at, channel, \
                 callback_id, applied, recorded_at) VALUES ($1, 'SUBMITTED', $2, $3, $4, $5, $6) \
                 ON CONFLICT (callback_id) DO NOTHING",
            )
            .bind(&submitted.message_id)
            .bind($time(&at))
            .bind(&submitted.channel)
            .bind(callback.id)
            .bind(false)
            .bind($time(&now))
            .execute(&mut *conn)
            .await?;
            if recorded.rows_affected() > 0 {
                out.events.push(NewEvent {
                    kind: "message.submitted",
                    payload: serde_json::json!({
                        "message_id": submitted.message_id,
                        "channel": submitted.channel,
                        "identity": submitted.identity,
                        "submitted_at": at,
                    }),
                });
            }
            Ok(())
        }

        async fn apply_contact_event(
            conn: &mut $Conn,
            event: &ContactEvent,
            callback: &PendingCallback,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let at = event.event_time.or(event.accepted_time).unwrap_or(callback.received_at);
            let inserted = sqlx::query(
                "INSERT INTO contact_events (event_id, kind, channel, identity, conversation_id, \
                 contact_id, event_at, payload, callback_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(&event.event_id)
            .bind(&event.kind)
            .bind(&event.channel)
            .bind(&event.identity)
            .bind(&event.conversation_id)
            .bind(&event.contact_id)
            .bind($time(&at))
            .bind(&event.payload)
            .bind(callback.id)
            .bind($time(&now))
            .execute(&mut *conn)
            .await?;
            if inserted.rows_affected() > 0 {
                out.events.push(NewEvent {
                    kind: "event.inbound",
                    payload: serde_json::json!({
                        "event_id": event.event_id,
                        "kind": event.kind,
                        "channel": event.channel,
                        "identity": event.identity,
                        "conversation_id": event.conversation_id,
                        "contact_id": event.contact_id,
                        "at": at,
                    }),
                });
            }
            Ok(())
        }

        /// The latest notification by event time is the consent's `last_*` state; the latest
        /// *successful* one decides whether the identity may be messaged.
        async fn apply_consent(
            conn: &mut $Conn,
            consent: &ConsentReport,
            callback: &PendingCallback,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let at = ReportTime::new(consent.event_time, consent.accepted_time, callback.received_at).at;
            let opted_in = consent.kind == ConsentKind::OptIn;
            sqlx::query(
                "INSERT INTO consent_history (channel, identity, kind, status, request_id, contact_id, \
                 error, event_at, callback_id, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (callback_id) DO NOTHING",
            )
            .bind(&consent.channel)
            .bind(&consent.identity)
            .bind(consent.kind.as_str())
            .bind(&consent.status)
            .bind(&consent.request_id)
            .bind(&consent.contact_id)
            .bind(&consent.error)
            .bind($time(&at))
            .bind(callback.id)
            .bind($time(&now))
            .execute(&mut *conn)
            .await?;
            let succeeded = consent.succeeded();
            let inserted = sqlx::query(
                "INSERT INTO consents (channel, identity, consented, consented_at, last_kind, \
                 last_status, last_request_id, last_error, last_event_at, contact_id, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (channel, identity) DO NOTHING",
            )
            .bind(&consent.channel)
            .bind(&consent.identity)
            .bind(succeeded.then_some(opted_in))
            .bind(succeeded.then(|| $time(&at)))
            .bind(consent.kind.as_str())
            .bind(&consent.status)
            .bind(&consent.request_id)
            .bind(&consent.error)
            .bind($time(&at))
            .bind(&consent.contact_id)
            .bind($time(&now))
            .execute(&mut *conn)
            .await?;
            let mut changed = inserted.rows_affected() > 0;
            if !changed {
                let row = sqlx::query(concat!(
                    "SELECT last_event_at, consented_at FROM consents \
                     WHERE channel = $1 AND identity = $2",
                    $lock
                ))
                .bind(&consent.channel)
                .bind(&consent.identity)
                .fetch_one(&mut *conn)
                .await?;
                let newest = $read_time(&row, "last_event_at")?.is_none_or(|last| at > last);
                let decides = succeeded
                    && $read_time(&row, "consented_at")?.is_none_or(|last| at > last);
                if newest {
                    sqlx::query(
                        "UPDATE consents SET last_kind = $1, last_status = $2, last_request_id = $3, \
                         last_error = $4, last_event_at = $5, contact_id = COALESCE($6, contact_id), \
                         updated_at = $7 WHERE channel = $8 AND identity = $9",
                    )
                    .bind(consent.kind.as_str())
                    .bind(&consent.status)
                    .bind(&consent.request_id)
                    .bind(&consent.error)
                    .bind($time(&at))
                    .bind(&consent.contact_id)
                    .bind($time(&now))
                    .bind(&consent.channel)
                    .bind(&consent.identity)
                    .execute(&mut *conn)
                    .await?;
                }
                if decides {
                    sqlx::query(
                        "UPDATE consents SET consented = $1, consented_at = $2, updated_at = $3 \
                         WHERE channel = $4 AND identity = $5",
                    )
                    .bind(opted_in)
                    .bind($time(&at))
                    .bind($time(&now))
                    .bind(&consent.channel)
                    .bind(&consent.identity)
                    .execute(&mut *conn)
                    .await?;
                }
                changed = newest || decides;
            }
            if changed {
                let consented: Option<bool> = sqlx::query_scalar(
                    "SELECT consented FROM consents WHERE channel = $1 AND identity = $2",
                )
                .bind(&consent.channel)
                .bind(&consent.identity)
                .fetch_one(&mut *conn)
                .await?;
                out.events.push(NewEvent {
                    kind: "consent",
                    payload: serde_json::json!({
                        "channel": consent.channel,
                        "identity": consent.identity,
                        "consented": consented,
                        "kind": consent.kind.as_str(),
                        "status": consent.status,
                        "request_id": consent.request_id,
                        "error": consent.error,
                        "at": at,
                    }),
                });
            }
            Ok(())
        }

        async fn apply_capability(
            conn: &mut $Conn,
            capability: &CapabilityReport,
            callback: &PendingCallback,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let at = ReportTime::new(capability.event_time, capability.accepted_time, callback.received_at).at;
            let changed = sqlx::query(
                "INSERT INTO capabilities (channel, identity, status, channel_capabilities, reason, \
                 request_id, contact_id, checked_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (channel, identity) DO UPDATE SET status = excluded.status, \
                 channel_capabilities = excluded.channel_capabilities, reason = excluded.reason, \
                 request_id = excluded.request_id, contact_id = COALESCE(excluded.contact_id, capabilities.contact_id), \
                 checked_at = excluded.checked_at, updated_at = excluded.updated_at \
                 WHERE capabilities.checked_at < excluded.checked_at",
            )
            .bind(&capability.channel)
            .bind(&capability.identity)
            .bind(&capability.status)
            .bind(&capability.channel_capabilities)
            .bind(&capability.reason)
            .bind(&capability.request_id)
            .bind(&capability.contact_id)
            .bind($time(&at))
            .bind($time(&now))
            .execute(&mut *conn)
            .await?;
            if changed.rows_affected() > 0 {
                out.events.push(NewEvent {
                    kind: "capability",
                    payload: serde_json::json!({
                        "channel": capability.channel,
                        "identity": capability.identity,
                        "status": capability.status,
                        "at": at,
                    }),
                });
            }
            Ok(())
        }

        async fn apply_contact(
            conn: &mut $Conn,
            change: &ContactChange,
            at: DateTime<Utc>,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let (contact, merged) = match change {
                ContactChange::Created(c) | ContactChange::Updated(c) => {
                    (upsert_contact(conn, c, None, at, now).await?.then_some(c), None)
                }
                ContactChange::Deleted(c) => {
                    (upsert_contact(conn, c, Some((None, at)), at, now).await?.then_some(c), None)
                }
                ContactChange::Merged { preserved, deleted } => {
                    let kept = upsert_contact(conn, preserved, None, at, now).await?;
                    let gone = upsert_contact(conn, deleted, Some((Some(&preserved.contact_id), at)), at, now)
                        .await?;
                    sqlx::query(
                        "UPDATE contact_identities SET contact_id = $1, updated_at = $2 WHERE contact_id = $3",
                    )
                    .bind(&preserved.contact_id)
                    .bind($time(&now))
                    .bind(&deleted.contact_id)
                    .execute(&mut *conn)
                    .await?;
                    ((kept || gone).then_some(preserved), Some(&deleted.contact_id))
                }
            };
            let Some(contact) = contact else { return Ok(()) };
            match change {
                ContactChange::Created(_) | ContactChange::Updated(_) => {
                    replace_identities(conn, contact, now).await?;
                }
                // The preserved contact keeps what it had, what it gained from the merge,
                // and whatever the notification lists.
                ContactChange::Merged { .. } => add_identities(conn, contact, now).await?,
                ContactChange::Deleted(_) => {}
            }
            out.events.push(NewEvent {
                kind: "contact",
                payload: serde_json::json!({
                    "contact_id": contact.contact_id,
                    "change": change.name(),
                    "merged_contact_id": merged,
                    "display_name": contact.display_name,
                    "identities": contact.identities.iter()
                        .map(|(channel, identity)| serde_json::json!({"channel": channel, "identity": identity}))
                        .collect::<Vec<_>>(),
                    "at": at,
                }),
            });
            Ok(())
        }

        /// Writes a contact if this notification is newer than what is stored. `deletion`
        /// marks it deleted (and merged into another contact, for merges). Returns whether
        /// anything changed.
        async fn upsert_contact(
            conn: &mut $Conn,
            contact: &ContactState,
            deletion: Option<(Option<&String>, DateTime<Utc>)>,
            at: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> Result<bool, sqlx::Error> {
            let (merged_into, deleted_at) = match deletion {
                Some((into, when)) => (into, Some(when)),
                None => (None, None),
            };
            let written = sqlx::query(
                "INSERT INTO contacts (contact_id, display_name, email, external_id, metadata, \
                 language, channel_priority, merged_into, deleted_at, last_event_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
                 ON CONFLICT (contact_id) DO UPDATE SET \
                 display_name = COALESCE(excluded.display_name, contacts.display_name), \
                 email = COALESCE(excluded.email, contacts.email), \
                 external_id = COALESCE(excluded.external_id, contacts.external_id), \
                 metadata = COALESCE(excluded.metadata, contacts.metadata), \
                 language = COALESCE(excluded.language, contacts.language), \
                 channel_priority = COALESCE(excluded.channel_priority, contacts.channel_priority), \
                 merged_into = COALESCE(excluded.merged_into, contacts.merged_into), \
                 deleted_at = COALESCE(excluded.deleted_at, contacts.deleted_at), \
                 last_event_at = excluded.last_event_at, updated_at = excluded.updated_at \
                 WHERE contacts.last_event_at < excluded.last_event_at",
            )
            .bind(&contact.contact_id)
            .bind(&contact.display_name)
            .bind(&contact.email)
            .bind(&contact.external_id)
            .bind(&contact.metadata)
            .bind(&contact.language)
            .bind(&contact.channel_priority)
            .bind(merged_into)
            .bind(deleted_at.as_ref().map($time))
            .bind($time(&at))
            .bind($time(&now))
            .execute(&mut *conn)
            .await?;
            Ok(written.rows_affected() > 0)
        }

        /// The identities a notification lists are the contact's identities now.
        async fn replace_identities(
            conn: &mut $Conn,
            contact: &ContactState,
            now: DateTime<Utc>,
        ) -> Result<(), sqlx::Error> {
            sqlx::query("DELETE FROM contact_identities WHERE contact_id = $1")
                .bind(&contact.contact_id)
                .execute(&mut *conn)
                .await?;
            add_identities(conn, contact, now).await
        }

        async fn add_identities(
            conn: &mut $Conn,
            contact: &ContactState,
            now: DateTime<Utc>,
        ) -> Result<(), sqlx::Error> {
            for (channel, identity) in &contact.identities {
                sqlx::query(
                    "INSERT INTO contact_identities (channel, identity, contact_id, updated_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (channel, identity) DO UPDATE SET \
                     contact_id = excluded.contact_id, updated_at = excluded.updated_at",
                )
                .bind(channel)
                .bind(identity)
                .bind(&contact.contact_id)
                .bind($time(&now))
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }

        /// Current fields follow the newest notification; when it started, stopped and was
        /// deleted is kept whatever order the notifications arrive in.
        async fn apply_conversation(
            conn: &mut $Conn,
            change: ConversationChange,
            state: &ConversationState,
            at: DateTime<Utc>,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let active = state.active.or(match change {
                ConversationChange::Started => Some(true),
                ConversationChange::Stopped => Some(false),
                ConversationChange::Deleted => None,
            });
            let current = sqlx::query(
                "INSERT INTO conversations (conversation_id, app_id, contact_id, active, active_channel, \
                 metadata, last_event_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                 ON CONFLICT (conversation_id) DO UPDATE SET \
                 app_id = COALESCE(excluded.app_id, conversations.app_id), \
                 contact_id = COALESCE(excluded.contact_id, conversations.contact_id), \
                 active = COALESCE(excluded.active, conversations.active), \
                 active_channel = COALESCE(excluded.active_channel, conversations.active_channel), \
                 metadata = COALESCE(excluded.metadata, conversations.metadata), \
                 last_event_at = excluded.last_event_at, updated_at = excluded.updated_at \
                 WHERE conversations.last_event_at < excluded.last_event_at",
            )
            .bind(&state.conversation_id)
            .bind(&state.app_id)
            .bind(&state.contact_id)
            .bind(active)
            .bind(&state.active_channel)
            .bind(&state.metadata)
            .bind($time(&at))
            .bind($time(&now))
            .execute(&mut *conn)
            .await?;
            let column = match change {
                ConversationChange::Started => "started_at",
                ConversationChange::Stopped => "stopped_at",
                ConversationChange::Deleted => "deleted_at",
            };
            let stamped = sqlx::query(&format!(
                "UPDATE conversations SET {column} = $1, updated_at = $2 \
                 WHERE conversation_id = $3 AND {column} IS NULL"
            ))
            .bind($time(&at))
            .bind($time(&now))
            .bind(&state.conversation_id)
            .execute(&mut *conn)
            .await?;
            if current.rows_affected() > 0 || stamped.rows_affected() > 0 {
                out.events.push(NewEvent {
                    kind: "conversation",
                    payload: serde_json::json!({
                        "conversation_id": state.conversation_id,
                        "change": change.name(),
                        "active": active,
                        "contact_id": state.contact_id,
                        "active_channel": state.active_channel,
                        "at": at,
                    }),
                });
            }
            Ok(())
        }

        async fn apply_duplications(
            conn: &mut $Conn,
            duplications: &[IdentityDuplication],
            callback_id: i64,
            at: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            for duplication in duplications {
                let contact_ids = serde_json::to_string(&duplication.contact_ids).unwrap_or_default();
                let inserted = sqlx::query(
                    "INSERT INTO identity_duplications (channel, contact_ids, callback_id, reported_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (callback_id, contact_ids) DO NOTHING",
                )
                .bind(&duplication.channel)
                .bind(&contact_ids)
                .bind(callback_id)
                .bind($time(&at))
                .execute(&mut *conn)
                .await?;
                if inserted.rows_affected() > 0 {
                    out.events.push(NewEvent {
                        kind: "contact.duplicates",
                        payload: serde_json::json!({
                            "channel": duplication.channel,
                            "contact_ids": duplication.contact_ids,
                            "at": at,
                        }),
                    });
                }
            }
            Ok(())
        }

        async fn apply_sms_delivery(
            conn: &mut $Conn,
            report: &SmsDeliveryReport,
            callback: &PendingCallback,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let at = report.operator_status_at.or(report.at).unwrap_or(callback.received_at);
            sqlx::query(
                "INSERT INTO sms_deliveries (batch_id, recipient, created_at, updated_at) \
                 VALUES ($1, $2, $3, $3) ON CONFLICT (batch_id, recipient) DO NOTHING",
            )
            .bind(&report.batch_id)
            .bind(&report.recipient)
            .bind($time(&now))
            .execute(&mut *conn)
            .await?;
            let row = sqlx::query(concat!(
                "SELECT status, status_at FROM sms_deliveries WHERE batch_id = $1 AND recipient = $2",
                $lock
            ))
            .bind(&report.batch_id)
            .bind(&report.recipient)
            .fetch_one(&mut *conn)
            .await?;
            let status: Option<String> = row.try_get("status")?;
            let current = status.as_deref().zip($read_time(&row, "status_at")?);
            let applied = sms_supersedes(current, (&report.status, at));
            if applied {
                sqlx::query(
                    "UPDATE sms_deliveries SET status = $1, code = $2, status_at = $3, \
                     client_reference = COALESCE($4, client_reference), operator = COALESCE($5, operator), \
                     updated_at = $6 WHERE batch_id = $7 AND recipient = $8",
                )
                .bind(&report.status)
                .bind(report.code)
                .bind($time(&at))
                .bind(&report.client_reference)
                .bind(&report.operator)
                .bind($time(&now))
                .bind(&report.batch_id)
                .bind(&report.recipient)
                .execute(&mut *conn)
                .await?;
            }
            sqlx::query(
                "INSERT INTO sms_delivery_history (batch_id, recipient, status, code, status_at, \
                 callback_id, applied, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (callback_id) DO NOTHING",
            )
            .bind(&report.batch_id)
            .bind(&report.recipient)
            .bind(&report.status)
            .bind(report.code)
            .bind($time(&at))
            .bind(callback.id)
            .bind(applied)
            .bind($time(&now))
            .execute(&mut *conn)
            .await?;
            if applied {
                out.events.push(NewEvent {
                    kind: "sms.delivery",
                    payload: serde_json::json!({
                        "batch_id": report.batch_id,
                        "recipient": report.recipient,
                        "status": report.status,
                        "previous_status": status,
                        "code": report.code,
                        "status_at": at,
                    }),
                });
            }
            Ok(())
        }

        /// Batch reports are snapshots without a time of their own: the latest to arrive wins.
        async fn apply_sms_batch(
            conn: &mut $Conn,
            batch: &SmsBatchReport,
            callback_id: i64,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let written = sqlx::query(
                "INSERT INTO sms_batches (batch_id, kind, total_message_count, statuses, \
                 client_reference, callback_id, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (batch_id) DO UPDATE SET kind = excluded.kind, \
                 total_message_count = excluded.total_message_count, statuses = excluded.statuses, \
                 client_reference = COALESCE(excluded.client_reference, sms_batches.client_reference), \
                 callback_id = excluded.callback_id, updated_at = excluded.updated_at \
                 WHERE sms_batches.callback_id < excluded.callback_id",
            )
            .bind(&batch.batch_id)
            .bind(&batch.kind)
            .bind(batch.total_message_count)
            .bind(&batch.statuses)
            .bind(&batch.client_reference)
            .bind(callback_id)
            .bind($time(&now))
            .execute(&mut *conn)
            .await?;
            if written.rows_affected() > 0 {
                out.events.push(NewEvent {
                    kind: "sms.batch",
                    payload: serde_json::json!({
                        "batch_id": batch.batch_id,
                        "total_message_count": batch.total_message_count,
                        "statuses": serde_json::from_str::<serde_json::Value>(&batch.statuses).unwrap_or_default(),
                    }),
                });
            }
            Ok(())
        }

        async fn apply_sms_inbound(
            conn: &mut $Conn,
            message: &SmsInbound,
            callback_id: i64,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<(), sqlx::Error> {
            let inserted = sqlx::query(
                "INSERT INTO sms_inbound (id, kind, from_number, to_number, text, payload, received_at, \
                 sent_at, operator_id, client_reference, callback_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&message.id)
            .bind(&message.kind)
            .bind(&message.from)
            .bind(&message.to)
            .bind(&message.text)
            .bind(&message.payload)
            .bind(message.received_at.as_ref().map($time))
            .bind(message.sent_at.as_ref().map($time))
            .bind(&message.operator_id)
            .bind(&message.client_reference)
            .bind(callback_id)
            .bind($time(&now))
            .execute(&mut *conn)
            .await?;
            if inserted.rows_affected() > 0 {
                out.events.push(NewEvent {
                    kind: "sms.inbound",
                    payload: serde_json::json!({
                        "id": message.id,
                        "kind": message.kind,
                        "from": message.from,
                        "to": message.to,
                        "text": message.text,
                        "received_at": message.received_at,
                    }),
                });
            }
            Ok(())
        }

        /// Appends state changes to the outbox the live stream reads, in commit order, in
        /// statements of up to `EVENTS_PER_INSERT` rows.
        async fn insert_events(
            conn: &mut $Conn,
            events: &[(i64, NewEvent)],
            now: DateTime<Utc>,
        ) -> Result<(), sqlx::Error> {
            const EVENTS_PER_INSERT: usize = 256;
            for chunk in events.chunks(EVENTS_PER_INSERT) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO events (callback_id, type, payload, created_at) ",
                );
                insert.push_values(chunk, |mut row, (callback_id, event)| {
                    row.push_bind(*callback_id)
                        .push_bind(event.kind)
                        .push_bind(event.payload.to_string())
                        .push_bind($time(&now));
                });
                insert.build().persistent($persist_batches).execute(&mut *conn).await?;
            }
            Ok(())
        }

        /// Marks one callback processed (only if nobody else did, unless replaying) and
        /// applies its plan. State changes are appended to `events`.
        async fn process_one(
            conn: &mut $Conn,
            item: &Work,
            now: DateTime<Utc>,
            out: &mut Outputs,
        ) -> Result<Processed, sqlx::Error> {
            let unprocessable = match &item.plan {
                Plan::Unprocessable(reason) => Some(reason.as_str()),
                Plan::Apply(_) => None,
            };
            let sql = if item.replay {
                "UPDATE callbacks SET processed_at = COALESCE(processed_at, $1), \
                 last_error = $2 WHERE id = $3"
            } else {
                // The conditional update takes the row's lock: two workers cannot both apply
                // the same callback.
                concat!(
                    "UPDATE callbacks SET processed_at = $1, attempts = attempts + 1, last_error = $2",
                    $release_lease,
                    " WHERE id = $3 AND processed_at IS NULL"
                )
            };
            let claimed = sqlx::query(sql)
                .bind($time(&now))
                .bind(unprocessable)
                .bind(item.callback.id)
                .execute(&mut *conn)
                .await?;
            if claimed.rows_affected() == 0 {
                return Ok(Processed::AlreadyProcessed);
            }
            match &item.plan {
                Plan::Unprocessable(reason) => Ok(Processed::Unprocessable(reason.clone())),
                Plan::Apply(effects) => {
                    for effect in effects {
                        apply_effect(conn, effect, &item.callback, now, out).await?;
                    }
                    insert_history(conn, &std::mem::take(&mut out.history)).await?;
                    Ok(Processed::Applied)
                }
            }
        }

        /// Records a failed attempt and when to try again.
        async fn record_failure(
            conn: &mut $Conn,
            item: &Work,
            error: &str,
        ) -> Result<(), sqlx::Error> {
            sqlx::query(concat!(
                "UPDATE callbacks SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2",
                $release_lease,
                " WHERE id = $3 AND processed_at IS NULL"
            ))
            .bind(error)
            .bind($time(&item.retry_at))
            .bind(item.callback.id)
            .execute(conn)
            .await?;
            Ok(())
        }
    };
}

pub(crate) use domain_writes;
