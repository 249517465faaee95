//! Callback generation for the bench: realistic, correctly signed bodies in a configurable
//! mix, with unique ids, several delivery reports per message (some out of order),
//! resends of earlier bodies and requests signed with a wrong secret.
//!
//! Bodies and header values are written in chunks into one buffer each, then handed out as
//! cheap `Bytes` slices: the load generator shares the machine with the receiver, so it
//! avoids allocating per request.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Datelike, Timelike, Utc};
use hmac::{Hmac, Mac};
use hyper::header::{HeaderValue, InvalidHeaderValue};
use sha2::Sha256;
use ulid::Ulid;

type HmacSha256 = Hmac<Sha256>;

/// The mix used when `--mix` is not given.
pub const DEFAULT_MIX: &str = "delivery=60,inbound=15,event=10,optout=5,sms=10";

const APP_ID: &str = "01HBENCHAPP0000000000000A1";
const PROJECT_ID: &str = "9d1f6a52-0000-4000-8000-00000000be4c";
/// Messages whose delivery reports are still to be sent, per generator: their reports
/// interleave, as they do when many messages are in flight.
const MAX_OPEN_MESSAGES: usize = 16;
/// Earlier bodies a resend (`--duplicates`) picks from.
const RECENT_BODIES: usize = 1024;
/// Room reserved per body in a chunk's buffer (bodies are 350-700 bytes).
const BODY_CAPACITY: usize = 720;
const ULID_LEN: usize = 26;
/// An HMAC-SHA256 MAC in padded base64.
const SIGNATURE_LEN: usize = 44;

/// The callback families the bench sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Conversation `MESSAGE_DELIVERY`: QUEUED_ON_CHANNEL, DELIVERED, READ per message.
    Delivery,
    /// Conversation `MESSAGE_INBOUND`: a text message from a contact.
    Inbound,
    /// Conversation `EVENT_INBOUND`: composing events.
    Event,
    /// Conversation `OPT_OUT`.
    OptOut,
    /// SMS `recipient_delivery_report_sms`.
    Sms,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Delivery,
        Kind::Inbound,
        Kind::Event,
        Kind::OptOut,
        Kind::Sms,
    ];

    /// The name used in `--mix`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Delivery => "delivery",
            Kind::Inbound => "inbound",
            Kind::Event => "event",
            Kind::OptOut => "optout",
            Kind::Sms => "sms",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Relative weights of each kind, e.g. `delivery=60,inbound=15` (missing kinds weigh 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    weights: [u64; 5],
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut weights = [0; 5];
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected KIND=WEIGHT"))?;
            let kind = Kind::ALL
                .into_iter()
                .find(|k| k.name() == name.trim())
                .ok_or_else(|| {
                    format!(
                        "unknown kind {:?}; kinds: delivery, inbound, event, optout, sms",
                        name.trim()
                    )
                })?;
            weights[kind.index()] = weight
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: the weight must be a whole number"))?;
        }
        if weights.iter().all(|w| *w == 0) {
            return Err("at least one kind needs a weight above 0".into());
        }
        if weights.iter().sum::<u64>() > u64::from(u32::MAX) {
            return Err("weights are too large".into());
        }
        Ok(Mix { weights })
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for kind in Kind::ALL {
            let weight = self.weights[kind.index()];
            if weight > 0 {
                let comma = if first { "" } else { "," };
                write!(f, "{comma}{}={weight}", kind.name())?;
                first = false;
            }
        }
        Ok(())
    }
}

impl Mix {
    /// The expected fraction of fresh callbacks of this kind.
    pub fn share(&self, kind: Kind) -> f64 {
        self.weights[kind.index()] as f64 / self.weights.iter().sum::<u64>() as f64
    }

    fn pick(&self, rng: &mut Rng) -> Kind {
        let mut draw = rng.below(self.weights.iter().sum());
        for kind in Kind::ALL {
            let weight = self.weights[kind.index()];
            if draw < weight {
                return kind;
            }
            draw -= weight;
        }
        Kind::Delivery
    }
}

/// SplitMix64: tiny, fast and reproducible from a seed; quality is ample for choosing
/// callback kinds.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// What the receiver should answer to a prepared request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A new callback: 200 `accepted`.
    Accepted,
    /// An earlier body sent again with a fresh nonce: 200 `duplicate`.
    Duplicate,
    /// Signed with a wrong secret: 401.
    Unauthorized,
}

/// One request, ready to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub body: Bytes,
    pub signature: HeaderValue,
    pub nonce: HeaderValue,
    pub timestamp: HeaderValue,
    pub expect: Expect,
    pub kind: Kind,
}

/// How the bench generates callbacks; shared by every connection.
#[derive(Debug, Clone)]
pub struct GeneratorOptions {
    pub mix: Mix,
    /// Fraction of requests that resend an earlier body.
    pub duplicates: f64,
    /// Fraction of requests signed with a wrong secret.
    pub bad_signatures: f64,
    pub secret: String,
    pub seed: u64,
    /// The run's start in unix milliseconds: the time part of every generated id, so ids
    /// from separate runs against one database never collide.
    pub run_ms: u64,
}

/// A delivery status with the delay after which it happens to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Queued,
    Delivered,
    Read,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Queued => "QUEUED_ON_CHANNEL",
            Status::Delivered => "DELIVERED",
            Status::Read => "READ",
        }
    }

    fn offset(self) -> chrono::Duration {
        match self {
            Status::Queued => chrono::Duration::zero(),
            Status::Delivered => chrono::Duration::milliseconds(1_200),
            Status::Read => chrono::Duration::milliseconds(9_500),
        }
    }
}

/// An outbound message whose delivery reports are not all sent yet.
#[derive(Debug, Clone)]
struct OpenMessage {
    id: Id,
    conversation: Id,
    contact: Id,
    phone: u64,
    sent_at: DateTime<Utc>,
    /// Statuses in the order they will be sent (not always their event order).
    order: [Status; 3],
    count: usize,
    next: usize,
}

/// A ULID as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Id([u8; ULID_LEN]);

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.0).unwrap_or_default())
    }
}

/// Unique ULIDs without a random source per id: the run's time, a salt from the seed, the
/// connection number and a counter fill the 48 + 80 bits.
#[derive(Debug, Clone)]
struct Ids {
    time_ms: u64,
    high: u128,
    counter: u64,
}

impl Ids {
    const COUNTER_BITS: u32 = 40;

    fn new(time_ms: u64, salt: u64, stream: u16) -> Self {
        let salt = u128::from(salt & 0xFF_FFFF);
        Ids {
            time_ms,
            high: (salt << 56) | (u128::from(stream) << Self::COUNTER_BITS),
            counter: 0,
        }
    }

    fn next(&mut self) -> Id {
        self.counter += 1;
        let low = u128::from(self.counter & ((1 << Self::COUNTER_BITS) - 1));
        let mut text = [0u8; ULID_LEN];
        Ulid::from_parts(self.time_ms, self.high | low).array_to_str(&mut text);
        Id(text)
    }
}

/// A time as Sinch writes it: `2025-03-04T12:00:01.250Z`. Written without allocating.
struct Stamp(DateTime<Utc>);

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.timestamp_subsec_millis().min(999)
        )
    }
}

/// A Swedish mobile number.
struct Phone(u64);

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "4670{:07}", self.0 % 10_000_000)
    }
}

const INBOUND_TEXTS: &[&str] = &[
    "Hi! Is my order on its way? I have not received a tracking number yet.",
    "STOP",
    "Can I change the delivery address to my office? It's the one on Sveavägen.",
    "Thanks, received it 👍",
    "What are your opening hours on Saturday?",
    "I would like to return the blue jacket, it is too small. How do I do that?",
];

/// Where one body of a chunk comes from.
enum Source {
    /// Written into the chunk's buffer at this range.
    Written(usize, usize),
    /// A body of an earlier chunk, resent.
    Resent(Bytes),
    /// The body of an earlier request of this chunk (its index), resent.
    Again(usize),
}

/// Generates the requests of one connection.
pub struct Generator {
    rng: Rng,
    mix: Mix,
    duplicates: f64,
    bad_signatures: f64,
    key: HmacSha256,
    wrong_key: HmacSha256,
    ids: Ids,
    nonces: Ids,
    serial: u64,
    open: Vec<OpenMessage>,
    recent: VecDeque<(Bytes, Kind)>,
}

impl Generator {
    /// A generator for connection `stream`; generators of one run never produce the same id.
    pub fn new(options: &GeneratorOptions, stream: u16) -> Self {
        let mut rng = Rng::new(options.seed ^ (u64::from(stream) << 32));
        let salt = Rng::new(options.seed).next_u64();
        Generator {
            key: hmac_key(&options.secret),
            wrong_key: hmac_key(&format!("{}-but-wrong", options.secret)),
            ids: Ids::new(options.run_ms, salt, stream),
            nonces: Ids::new(options.run_ms, !salt, stream),
            serial: rng.below(1_000_000),
            rng,
            mix: options.mix.clone(),
            duplicates: options.duplicates,
            bad_signatures: options.bad_signatures,
            open: Vec::with_capacity(MAX_OPEN_MESSAGES),
            recent: VecDeque::with_capacity(RECENT_BODIES),
        }
    }

    /// Appends `n` requests to `out`, with current times and signatures.
    pub fn fill(
        &mut self,
        out: &mut VecDeque<Prepared>,
        n: usize,
    ) -> Result<(), InvalidHeaderValue> {
        self.fill_at(Utc::now(), out, n)
    }

    /// Appends `n` requests to `out`, as if generated at `now`.
    pub fn fill_at(
        &mut self,
        now: DateTime<Utc>,
        out: &mut VecDeque<Prepared>,
        n: usize,
    ) -> Result<(), InvalidHeaderValue> {
        let mut buffer = BytesMut::with_capacity(n * BODY_CAPACITY);
        let mut plan: Vec<(Source, Expect, Kind)> = Vec::with_capacity(n);
        // New, correctly signed bodies of this chunk: resends may pick them too, so even a
        // short run resends as often as asked.
        let mut fresh = Vec::with_capacity(n);
        for _ in 0..n {
            let planned = self.plan_one(now, &mut buffer, &fresh, &plan);
            if planned.1 == Expect::Accepted {
                fresh.push(plan.len());
            }
            plan.push(planned);
        }
        let written = buffer.freeze();
        let mut bodies: Vec<(Bytes, Expect, Kind)> = Vec::with_capacity(n);
        for (source, expect, kind) in plan {
            let body = match source {
                Source::Written(start, end) => written.slice(start..end),
                Source::Resent(body) => body,
                Source::Again(index) => bodies.get(index).map(|b| b.0.clone()).unwrap_or_default(),
            };
            bodies.push((body, expect, kind));
        }
        for (body, expect, kind) in &bodies {
            if *expect == Expect::Accepted {
                self.remember(body.clone(), *kind);
            }
        }
        self.sign_all(now, bodies, out)
    }

    /// Decides what the next request is and writes its body if it is a new one. Resends
    /// pick among the bodies of earlier chunks and the `fresh` ones planned so far, which
    /// are sent earlier on the same connection, so their first copy is answered first.
    fn plan_one(
        &mut self,
        now: DateTime<Utc>,
        buffer: &mut BytesMut,
        fresh: &[usize],
        plan: &[(Source, Expect, Kind)],
    ) -> (Source, Expect, Kind) {
        let draw = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let earlier = self.recent.len() + fresh.len();
        if draw >= self.bad_signatures
            && draw < self.bad_signatures + self.duplicates
            && earlier > 0
        {
            let pick = self.rng.below(earlier as u64) as usize;
            let source = match pick.checked_sub(self.recent.len()) {
                None => self
                    .recent
                    .get(pick)
                    .map(|(body, kind)| (Source::Resent(body.clone()), *kind)),
                Some(i) => fresh
                    .get(i)
                    .and_then(|&index| Some((Source::Again(index), plan.get(index)?.2))),
            };
            if let Some((source, kind)) = source {
                return (source, Expect::Duplicate, kind);
            }
        }
        let expect = if draw < self.bad_signatures {
            Expect::Unauthorized
        } else {
            Expect::Accepted
        };
        let kind = self.mix.pick(&mut self.rng);
        let start = buffer.len();
        // Writing into memory cannot fail.
        let _ = self.write_body(kind, now, buffer);
        (Source::Written(start, buffer.len()), expect, kind)
    }

    fn remember(&mut self, body: Bytes, kind: Kind) {
        if self.recent.len() == RECENT_BODIES {
            self.recent.pop_front();
        }
        self.recent.push_back((body, kind));
    }

    fn sign_all(
        &mut self,
        now: DateTime<Utc>,
        bodies: Vec<(Bytes, Expect, Kind)>,
        out: &mut VecDeque<Prepared>,
    ) -> Result<(), InvalidHeaderValue> {
        let timestamp_text = now.timestamp().to_string();
        let timestamp = HeaderValue::from_str(&timestamp_text)?;
        let mut headers = BytesMut::with_capacity(bodies.len() * (ULID_LEN + SIGNATURE_LEN));
        for (body, expect, _) in &bodies {
            let nonce = self.nonces.next();
            let key = if *expect == Expect::Unauthorized {
                &self.wrong_key
            } else {
                &self.key
            };
            headers.extend_from_slice(&nonce.0);
            headers.extend_from_slice(&signature(key, body, &nonce.0, &timestamp_text));
        }
        let headers = headers.freeze();
        for (i, (body, expect, kind)) in bodies.into_iter().enumerate() {
            let at = i * (ULID_LEN + SIGNATURE_LEN);
            out.push_back(Prepared {
                body,
                nonce: HeaderValue::from_maybe_shared(headers.slice(at..at + ULID_LEN))?,
                signature: HeaderValue::from_maybe_shared(
                    headers.slice(at + ULID_LEN..at + ULID_LEN + SIGNATURE_LEN),
                )?,
                timestamp: timestamp.clone(),
                expect,
                kind,
            });
        }
        Ok(())
    }

    fn write_body(&mut self, kind: Kind, now: DateTime<Utc>, out: &mut BytesMut) -> fmt::Result {
        self.serial += 1;
        match kind {
            Kind::Delivery => self.write_delivery(now, out),
            Kind::Inbound => self.write_inbound(now, out),
            Kind::Event => self.write_event(now, out),
            Kind::OptOut => self.write_opt_out(now, out),
            Kind::Sms => self.write_sms(now, out),
        }
    }

    /// The next report of a message in flight; a new message is opened now and then.
    fn write_delivery(&mut self, now: DateTime<Utc>, out: &mut BytesMut) -> fmt::Result {
        let open_new =
            self.open.is_empty() || (self.open.len() < MAX_OPEN_MESSAGES && self.rng.chance(0.4));
        if open_new {
            let message = self.open_message(now);
            self.open.push(message);
        }
        let index = if open_new {
            self.open.len() - 1
        } else {
            self.rng.below(self.open.len() as u64) as usize
        };
        let Some(message) = self.open.get_mut(index) else {
            return Ok(());
        };
        let status = message.order[message.next];
        message.next += 1;
        let message = if message.next == message.count {
            self.open.swap_remove(index)
        } else {
            message.clone()
        };
        let event = Stamp(message.sent_at + status.offset());
        let accepted =
            Stamp(message.sent_at + status.offset() + chrono::Duration::milliseconds(35));
        write!(
            out,
            r#"{{"app_id":"{APP_ID}","accepted_time":"{accepted}","event_time":"{event}","project_id":"{PROJECT_ID}","message_delivery_report":{{"message_id":"{}","conversation_id":"{}","status":"{}","channel_identity":{{"channel":"WHATSAPP","identity":"{}","app_id":"{APP_ID}"}},"contact_id":"{}","metadata":"order-{}","processing_mode":"CONVERSATION"}},"message_metadata":"{{\"campaign\":\"spring-sale-2025\",\"segment\":\"returning-customers\"}}","correlation_id":"bench-{}"}}"#,
            message.id,
            message.conversation,
            status.name(),
            Phone(message.phone),
            message.contact,
            self.serial,
            self.serial,
        )
    }

    /// A message with two or three statuses, one in five sent out of order.
    fn open_message(&mut self, now: DateTime<Utc>) -> OpenMessage {
        let count = if self.rng.chance(0.75) { 3 } else { 2 };
        let mut order = [Status::Queued, Status::Delivered, Status::Read];
        if self.rng.chance(0.2) {
            let at = self.rng.below(count as u64 - 1) as usize;
            order.swap(at, at + 1);
        }
        OpenMessage {
            id: self.ids.next(),
            conversation: self.ids.next(),
            contact: self.ids.next(),
            phone: self.rng.next_u64(),
            sent_at: now - chrono::Duration::seconds(10),
            order,
            count,
            next: 0,
        }
    }

    fn write_inbound(&mut self, now: DateTime<Utc>, out: &mut BytesMut) -> fmt::Result {
        let text = INBOUND_TEXTS[self.rng.below(INBOUND_TEXTS.len() as u64) as usize];
        let (id, conversation, contact) = (self.ids.next(), self.ids.next(), self.ids.next());
        let (phone, t) = (Phone(self.rng.next_u64()), Stamp(now));
        write!(
            out,
            r#"{{"app_id":"{APP_ID}","accepted_time":"{t}","event_time":"{t}","project_id":"{PROJECT_ID}","message":{{"id":"{id}","direction":"TO_APP","contact_message":{{"text_message":{{"text":"{text}"}}}},"channel_identity":{{"channel":"WHATSAPP","identity":"{phone}","app_id":"{APP_ID}"}},"conversation_id":"{conversation}","contact_id":"{contact}","metadata":"","accept_time":"{t}","sender_id":"","processing_mode":"CONVERSATION","injected":false}},"message_metadata":"","correlation_id":""}}"#
        )
    }

    fn write_event(&mut self, now: DateTime<Utc>, out: &mut BytesMut) -> fmt::Result {
        let event = if self.rng.chance(0.5) {
            "composing_event"
        } else {
            "composing_end_event"
        };
        let (id, conversation, contact) = (self.ids.next(), self.ids.next(), self.ids.next());
        let (phone, t) = (Phone(self.rng.next_u64()), Stamp(now));
        write!(
            out,
            r#"{{"app_id":"{APP_ID}","accepted_time":"{t}","event_time":"{t}","project_id":"{PROJECT_ID}","event":{{"id":"{id}","direction":"TO_APP","contact_event":{{"{event}":{{}}}},"channel_identity":{{"channel":"RCS","identity":"{phone}","app_id":"{APP_ID}"}},"conversation_id":"{conversation}","contact_id":"{contact}","accept_time":"{t}","processing_mode":"CONVERSATION"}},"message_metadata":"","correlation_id":""}}"#
        )
    }

    fn write_opt_out(&mut self, now: DateTime<Utc>, out: &mut BytesMut) -> fmt::Result {
        let (request, contact) = (self.ids.next(), self.ids.next());
        let (phone, t) = (Phone(self.rng.next_u64()), Stamp(now));
        write!(
            out,
            r#"{{"app_id":"{APP_ID}","accepted_time":"{t}","event_time":"{t}","project_id":"{PROJECT_ID}","opt_out_notification":{{"request_id":"{request}","contact_id":"{contact}","channel":"WHATSAPP","identity":"{phone}","status":"OPT_OUT_SUCCEEDED","processing_mode":"CONVERSATION"}},"message_metadata":"","correlation_id":""}}"#
        )
    }

    fn write_sms(&mut self, now: DateTime<Utc>, out: &mut BytesMut) -> fmt::Result {
        let (status, code) = if self.rng.chance(0.95) {
            ("Delivered", 0)
        } else {
            ("Failed", 402)
        };
        let (batch, phone) = (self.ids.next(), Phone(self.rng.next_u64()));
        let (at, operator_at) = (Stamp(now), Stamp(now - chrono::Duration::seconds(1)));
        write!(
            out,
            r#"{{"at":"{at}","batch_id":"{batch}","client_reference":"{{\"order\":\"{}\",\"source\":\"checkout-service\",\"template\":\"order-shipped-v3\"}}","code":{code},"operator_status_at":"{operator_at}","recipient":"{phone}","status":"{status}","type":"recipient_delivery_report_sms","applied_originator":"SinchShop","encoding":"GSM","number_of_message_parts":1,"operator":"24001"}}"#,
            self.serial
        )
    }
}

/// The key schedule is computed once; each signature starts from a copy of it.
fn hmac_key(secret: &str) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail; the fallback keeps it total.
    HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| HmacSha256::new(&Default::default()))
}

/// Sinch's scheme (see `sinch_webhooks::signature`): base64(HMAC(body "." nonce "." timestamp)).
fn signature(key: &HmacSha256, body: &[u8], nonce: &[u8], timestamp: &str) -> [u8; 44] {
    let mut mac = key.clone();
    mac.update(body);
    mac.update(b".");
    mac.update(nonce);
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    let mut text = [0u8; SIGNATURE_LEN];
    // 32 bytes always encode to exactly 44 characters.
    let _ = STANDARD.encode_slice(mac.finalize().into_bytes(), &mut text);
    text
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use chrono::TimeZone;

    use super::*;
    use sinch_webhooks::callback::{Trigger, classify};
    use sinch_webhooks::signature::{ALGORITHM, Rejection, SignatureHeaders, Verifier, sign};

    const SECRET: &str = "bench-test-secret-0123456789";

    fn options(mix: &str, duplicates: f64, bad_signatures: f64) -> GeneratorOptions {
        GeneratorOptions {
            mix: mix.parse().unwrap(),
            duplicates,
            bad_signatures,
            secret: SECRET.to_owned(),
            seed: 42,
            run_ms: 1_741_089_600_000,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 4, 12, 0, 0).unwrap()
    }

    fn generate(options: &GeneratorOptions, n: usize) -> Vec<Prepared> {
        let mut generator = Generator::new(options, 7);
        let mut out = VecDeque::new();
        while out.len() < n {
            generator.fill_at(now(), &mut out, 64).unwrap();
        }
        out.into_iter().take(n).collect()
    }

    fn verify(item: &Prepared) -> Result<(), Rejection> {
        let headers = SignatureHeaders {
            signature: Some(Ok(item.signature.to_str().unwrap())),
            nonce: Some(Ok(item.nonce.to_str().unwrap())),
            timestamp: Some(Ok(item.timestamp.to_str().unwrap())),
            algorithm: Some(Ok(ALGORITHM)),
        };
        Verifier::new(SECRET.into(), None, 300)
            .verify(&headers, &item.body, now().timestamp())
            .map(|_| ())
            .map_err(|f| f.rejection)
    }

    #[test]
    fn requests_verify_and_bad_signatures_do_not() {
        let items = generate(&options(DEFAULT_MIX, 0.1, 0.1), 2_000);
        let mut bad = 0;
        for item in &items {
            match item.expect {
                Expect::Unauthorized => {
                    bad += 1;
                    assert_eq!(verify(item), Err(Rejection::SignatureMismatch));
                }
                _ => assert_eq!(verify(item), Ok(()), "{:?}", item.body),
            }
        }
        assert!((150..250).contains(&bad), "{bad} bad signatures in 2000");
    }

    #[test]
    fn signatures_match_the_crate_signer() {
        let item = &generate(&options(DEFAULT_MIX, 0.0, 0.0), 1)[0];
        let expected = sign(
            SECRET,
            &item.body,
            item.nonce.to_str().unwrap(),
            item.timestamp.to_str().unwrap(),
        );
        assert_eq!(item.signature.to_str().unwrap(), expected);
        assert_eq!(item.nonce.len(), 26, "nonces are ULIDs");
    }

    #[test]
    fn the_mix_is_respected_and_bodies_classify_as_their_kind() {
        let items = generate(&options(DEFAULT_MIX, 0.0, 0.0), 20_000);
        let mix: Mix = DEFAULT_MIX.parse().unwrap();
        let mut counts: HashMap<Kind, usize> = HashMap::new();
        for item in &items {
            *counts.entry(item.kind).or_default() += 1;
            let trigger = classify(&item.body).unwrap().trigger;
            let expected = match item.kind {
                Kind::Delivery => Trigger::MessageDelivery,
                Kind::Inbound => Trigger::MessageInbound,
                Kind::Event => Trigger::EventInbound,
                Kind::OptOut => Trigger::OptOut,
                Kind::Sms => Trigger::SmsRecipientDeliveryReport,
            };
            assert_eq!(trigger, expected);
        }
        for kind in Kind::ALL {
            let share = counts.get(&kind).copied().unwrap_or(0) as f64 / items.len() as f64;
            assert!(
                (share - mix.share(kind)).abs() < 0.015,
                "{kind:?}: {share} vs {}",
                mix.share(kind)
            );
        }
    }

    #[test]
    fn fresh_callbacks_have_unique_ids_and_resends_repeat_an_earlier_one() {
        let items = generate(&options(DEFAULT_MIX, 0.2, 0.0), 5_000);
        let mut keys = HashSet::new();
        let mut resends = 0;
        for item in &items {
            let key = classify(&item.body).unwrap().dedupe_key;
            assert!(!key.starts_with("sha256:"), "a natural key: {key}");
            match item.expect {
                Expect::Accepted => assert!(keys.insert(key), "unique"),
                Expect::Duplicate => {
                    resends += 1;
                    assert!(keys.contains(&key), "a resend repeats an earlier body");
                }
                Expect::Unauthorized => unreachable!(),
            }
        }
        assert!((850..1150).contains(&resends), "{resends} resends");
        // Another connection, and another run, never repeat these ids.
        let other_stream = Generator::new(&options(DEFAULT_MIX, 0.0, 0.0), 8);
        let mut other_run = options(DEFAULT_MIX, 0.0, 0.0);
        other_run.run_ms += 1;
        for mut generator in [other_stream, Generator::new(&other_run, 7)] {
            let mut out = VecDeque::new();
            generator.fill_at(now(), &mut out, 500).unwrap();
            for item in out {
                assert!(!keys.contains(&classify(&item.body).unwrap().dedupe_key));
            }
        }
    }

    #[test]
    fn resends_start_with_the_first_chunk_and_keep_their_kind() {
        let mut generator = Generator::new(&options(DEFAULT_MIX, 0.3, 0.0), 1);
        let mut first = VecDeque::new();
        generator.fill_at(now(), &mut first, 64).unwrap();
        let resends: Vec<_> = first
            .iter()
            .enumerate()
            .filter(|(_, item)| item.expect == Expect::Duplicate)
            .collect();
        assert!(resends.len() >= 10, "{} resends in 64", resends.len());
        for (at, resend) in resends {
            let original = first
                .iter()
                .position(|item| item.body == resend.body)
                .unwrap();
            assert!(original < at, "the first copy is sent first");
            assert_eq!(first[original].kind, resend.kind);
            assert_ne!(first[original].nonce, resend.nonce, "a fresh nonce");
        }
    }

    #[test]
    fn messages_get_several_statuses_some_out_of_order() {
        let items = generate(&options("delivery=1", 0.0, 0.0), 3_000);
        let mut per_message: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for item in &items {
            let body: serde_json::Value = serde_json::from_slice(&item.body).unwrap();
            let report = &body["message_delivery_report"];
            per_message
                .entry(report["message_id"].as_str().unwrap().to_owned())
                .or_default()
                .push((
                    report["status"].as_str().unwrap().to_owned(),
                    body["event_time"].as_str().unwrap().to_owned(),
                ));
        }
        let complete: Vec<_> = per_message.values().filter(|r| r.len() >= 2).collect();
        assert!(
            complete.len() * 10 >= per_message.len() * 9,
            "most messages"
        );
        assert!(per_message.values().any(|r| r.len() == 3));
        let statuses: HashSet<&str> = complete
            .iter()
            .flat_map(|r| r.iter().map(|(s, _)| s.as_str()))
            .collect();
        assert_eq!(
            statuses,
            HashSet::from(["QUEUED_ON_CHANNEL", "DELIVERED", "READ"])
        );
        let out_of_order = complete
            .iter()
            .filter(|r| r.windows(2).any(|w| w[0].1 > w[1].1))
            .count();
        let share = out_of_order as f64 / complete.len() as f64;
        assert!((0.1..0.3).contains(&share), "{share} out of order");
        // Reports of different messages interleave.
        let first_two: HashSet<_> = items[..8]
            .iter()
            .map(|i| classify(&i.body).unwrap().message_id)
            .collect();
        assert!(first_two.len() > 1);
    }

    #[test]
    fn bodies_are_realistically_sized_json() {
        for item in generate(&options(DEFAULT_MIX, 0.0, 0.0), 1_000) {
            let len = item.body.len();
            assert!((330..=720).contains(&len), "{len}: {:?}", item.body);
            serde_json::from_slice::<serde_json::Value>(&item.body).unwrap();
        }
    }

    #[test]
    fn mixes_parse_and_print() {
        let mix: Mix = "delivery=3, sms=1".parse().unwrap();
        assert_eq!(mix.to_string(), "delivery=3,sms=1");
        assert_eq!(mix.share(Kind::Sms), 0.25);
        assert_eq!(mix.share(Kind::Inbound), 0.0);
        assert_eq!(DEFAULT_MIX.parse::<Mix>().unwrap().to_string(), DEFAULT_MIX);
        for bad in [
            "",
            "delivery=0",
            "mms=1",
            "delivery",
            "delivery=-1",
            "sms=x",
        ] {
            assert!(bad.parse::<Mix>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_rng_is_reproducible_and_in_range() {
        let (mut a, mut b) = (Rng::new(1), Rng::new(1));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let (x, y) = (a.below(10), b.below(10));
            assert!(x < 10 && x == y);
        }
        assert_eq!(a.below(0), 0);
    }
}
