//! SVAML, Sinch's call control document: `{"instructions":[…],"action":{…}}`, exactly one
//! action and any number of instructions (Sinch's SVAML reference). Fields follow the Node
//! SDK's SVAML models and the reference; fields this receiver does not model are kept in
//! `extra` and relayed as they came.
//!
//! Sinch's own examples spell names in several cases (`connectPSTN`, `ConnectConf`,
//! `Continue`, `runmenu`), so names are read without regard to case and written in the SDK
//! models' camelCase. An unknown action or instruction name is refused: what Sinch does with
//! one is not documented, and an illegal SVAML answer to an ICE disconnects the call.

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::callback::family::{by_name, name_of, string_or_number};
use crate::callback::voice::{Destination, KeyValue};

/// A SVAML document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Svaml {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instructions: Vec<Instruction>,
    pub action: Action,
}

impl Svaml {
    /// `{"action":{"name":"hangup"}}`.
    pub fn hangup() -> Self {
        Svaml {
            instructions: Vec::new(),
            action: Action::Hangup(Extra::default()),
        }
    }

    /// `{"action":{"name":"continue"}}`.
    pub fn continue_call() -> Self {
        Svaml {
            instructions: Vec::new(),
            action: Action::Continue(Extra::default()),
        }
    }
}

/// Fields of an action or instruction that this receiver does not model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extra {
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// What to do with the call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "name", rename_all = "camelCase")]
pub enum Action {
    Hangup(Extra),
    Continue(Extra),
    ConnectPstn(ConnectPstn),
    ConnectMxp(ConnectMxp),
    ConnectConf(ConnectConf),
    ConnectSip(ConnectSip),
    /// Closed beta.
    ConnectStream(ConnectStream),
    RunMenu(RunMenu),
    Park(Park),
}

/// The names of the actions, in the SDK models' spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionName {
    Hangup,
    Continue,
    ConnectPstn,
    ConnectMxp,
    ConnectConf,
    ConnectSip,
    ConnectStream,
    RunMenu,
    Park,
}

const ACTION_NAMES: &[(ActionName, &str)] = &[
    (ActionName::Hangup, "hangup"),
    (ActionName::Continue, "continue"),
    (ActionName::ConnectPstn, "connectPstn"),
    (ActionName::ConnectMxp, "connectMxp"),
    (ActionName::ConnectConf, "connectConf"),
    (ActionName::ConnectSip, "connectSip"),
    (ActionName::ConnectStream, "connectStream"),
    (ActionName::RunMenu, "runMenu"),
    (ActionName::Park, "park"),
];

impl ActionName {
    pub fn parse(text: &str) -> Option<Self> {
        by_name(ACTION_NAMES, text)
    }

    pub fn as_str(self) -> &'static str {
        name_of(ACTION_NAMES, &self)
    }
}

impl Action {
    pub fn name(&self) -> ActionName {
        match self {
            Action::Hangup(_) => ActionName::Hangup,
            Action::Continue(_) => ActionName::Continue,
            Action::ConnectPstn(_) => ActionName::ConnectPstn,
            Action::ConnectMxp(_) => ActionName::ConnectMxp,
            Action::ConnectConf(_) => ActionName::ConnectConf,
            Action::ConnectSip(_) => ActionName::ConnectSip,
            Action::ConnectStream(_) => ActionName::ConnectStream,
            Action::RunMenu(_) => ActionName::RunMenu,
            Action::Park(_) => ActionName::Park,
        }
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (name, fields) = named(d, "action")?;
        let kind = ActionName::parse(&name)
            .ok_or_else(|| de::Error::custom(format!("unknown action {name:?}")))?;
        let action = match kind {
            ActionName::Hangup => fields_of(fields).map(Action::Hangup),
            ActionName::Continue => fields_of(fields).map(Action::Continue),
            ActionName::ConnectPstn => fields_of(fields).map(Action::ConnectPstn),
            ActionName::ConnectMxp => fields_of(fields).map(Action::ConnectMxp),
            ActionName::ConnectConf => fields_of(fields).map(Action::ConnectConf),
            ActionName::ConnectSip => fields_of(fields).map(Action::ConnectSip),
            ActionName::ConnectStream => fields_of(fields).map(Action::ConnectStream),
            ActionName::RunMenu => fields_of(fields).map(Action::RunMenu),
            ActionName::Park => fields_of(fields).map(Action::Park),
        };
        action.map_err(|e| de::Error::custom(format!("{}: {e}", kind.as_str())))
    }
}

/// Something to do before the action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "name", rename_all = "camelCase")]
pub enum Instruction {
    PlayFiles(PlayFiles),
    Say(Say),
    SendDtmf(SendDtmf),
    SetCookie(SetCookie),
    Answer(Extra),
    StartRecording(StartRecording),
    StopRecording(Extra),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstructionName {
    PlayFiles,
    Say,
    SendDtmf,
    SetCookie,
    Answer,
    StartRecording,
    StopRecording,
}

const INSTRUCTION_NAMES: &[(InstructionName, &str)] = &[
    (InstructionName::PlayFiles, "playFiles"),
    (InstructionName::Say, "say"),
    (InstructionName::SendDtmf, "sendDtmf"),
    (InstructionName::SetCookie, "setCookie"),
    (InstructionName::Answer, "answer"),
    (InstructionName::StartRecording, "startRecording"),
    (InstructionName::StopRecording, "stopRecording"),
];

impl InstructionName {
    pub fn parse(text: &str) -> Option<Self> {
        by_name(INSTRUCTION_NAMES, text)
    }

    pub fn as_str(self) -> &'static str {
        name_of(INSTRUCTION_NAMES, &self)
    }
}

impl<'de> Deserialize<'de> for Instruction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (name, fields) = named(d, "instruction")?;
        let kind = InstructionName::parse(&name)
            .ok_or_else(|| de::Error::custom(format!("unknown instruction {name:?}")))?;
        let instruction = match kind {
            InstructionName::PlayFiles => fields_of(fields).map(Instruction::PlayFiles),
            InstructionName::Say => fields_of(fields).map(Instruction::Say),
            InstructionName::SendDtmf => fields_of(fields).map(Instruction::SendDtmf),
            InstructionName::SetCookie => fields_of(fields).map(Instruction::SetCookie),
            InstructionName::Answer => fields_of(fields).map(Instruction::Answer),
            InstructionName::StartRecording => fields_of(fields).map(Instruction::StartRecording),
            InstructionName::StopRecording => fields_of(fields).map(Instruction::StopRecording),
        };
        instruction.map_err(|e| de::Error::custom(format!("{}: {e}", kind.as_str())))
    }
}

/// An object's `name` and its other members.
fn named<'de, D: Deserializer<'de>>(
    d: D,
    what: &str,
) -> Result<(String, Map<String, Value>), D::Error> {
    let mut fields = Map::deserialize(d)?;
    match fields.remove("name") {
        Some(Value::String(name)) => Ok((name, fields)),
        _ => Err(de::Error::custom(format!("an {what} needs a name"))),
    }
}

fn fields_of<T: DeserializeOwned>(fields: Map<String, Value>) -> Result<T, serde_json::Error> {
    serde_json::from_value(Value::Object(fields))
}

/// Connects the call to a phone number (`number`; without one, the number the caller dialled).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectPstn {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Seconds, at most 14400.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dial_timeout: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cli: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppress_callbacks: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtmf: Option<String>,
    /// The country whose ring tones to play, e.g. `se`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indications: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amd: Option<AmdSettings>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AmdSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(rename = "async", skip_serializing_if = "Option::is_none")]
    pub asynchronous: Option<bool>,
}

/// Connects an app-to-app call. The Node SDK spells the headers `callheaders`, the old docs
/// `callHeaders`: both are read, `callHeaders` is written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectMxp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    #[serde(alias = "callheaders", skip_serializing_if = "Option::is_none")]
    pub call_headers: Option<Vec<KeyValue>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Connects the call to a conference (`conferenceId` required, at most 64 characters).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectConf {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conference_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conference_dtmf_options: Option<Value>,
    /// `ring`, `music1`, `music2` or `music3`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moh: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Connects the call to a SIP server (`destination.endpoint` required).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectSip {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cli: Option<String>,
    /// `udp`, `tcp` or `tls`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppress_callbacks: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_headers: Option<Vec<KeyValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moh: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Connects the call to a WebSocket server (`destination` of type `websocket` required).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectStream {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_headers: Option<Vec<KeyValue>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Plays a menu; its result comes back as a PIE.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunMenu {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub barge: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// The menu to start with; `main` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_menu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_voice: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub menus: Vec<Menu>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Menu {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeats: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_digits: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_mills: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_timeout_mills: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<MenuOption>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A key and what it does: `return(value)` (ends the menu with a PIE) or `menu(id)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MenuOption {
    /// A string in the Node SDK, a number in Sinch's agent notes: read both, written as text.
    #[serde(
        default,
        deserialize_with = "string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub dtmf: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Puts an incoming call on hold (at most 600 seconds, per the old docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Park {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intro_prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<u32>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Plays files, `#tts[…]` or `#ssml[…]` (`ids` required).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlayFiles {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Speaks `text` (600 characters by default; Sinch support can raise the limit).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Say {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SendDtmf {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Stores a value that later callbacks of the call carry back (1024 bytes in all).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SetCookie {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `options`: `destinationUrl`, `credentials`, `format`, `notificationEvents`,
/// `transcriptionOptions`; relayed as given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StartRecording {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::answer::answer_fixture;
    use serde_json::json;

    fn read(body: &[u8]) -> Result<Svaml, String> {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    }

    fn written(svaml: &Svaml) -> Value {
        serde_json::to_value(svaml).unwrap()
    }

    #[test]
    fn sinch_examples_in_any_case_are_written_in_the_sdk_spelling() {
        let pstn = read(&answer_fixture("svaml/ice_connect_pstn.json")).unwrap();
        assert_eq!(
            written(&pstn),
            json!({"instructions":[{"name":"playFiles","ids":["welcome"],"locale":"en-US"}],
                   "action":{"name":"connectPstn","maxDuration":600,"number":"+46555000111",
                             "cli":"+46555000222","suppressCallbacks":false}})
        );
        let cont = read(&answer_fixture("svaml/ace_continue.json")).unwrap();
        assert_eq!(written(&cont), json!({"action":{"name":"continue"}}));
        let conf = read(&answer_fixture("svaml/connect_conf.json")).unwrap();
        assert_eq!(
            written(&conf),
            json!({"action":{"name":"connectConf","conferenceId":"myConference123"}})
        );
        let menu = read(&answer_fixture("svaml/run_menu.json")).unwrap();
        assert_eq!(menu.action.name(), ActionName::RunMenu);
        assert_eq!(written(&menu)["action"]["name"], "runMenu");
        assert_eq!(written(&menu)["action"]["menus"][0]["maxDigits"], 4);
        assert!(written(&menu).get("instructions").is_none());
    }

    #[test]
    fn fields_this_receiver_does_not_model_are_relayed() {
        let body = br#"{"action":{"name":"connectPstn","number":"+1","future":{"a":[1]}},
            "instructions":[{"name":"say","text":"hi","voice":"x"}]}"#;
        let svaml = read(body).unwrap();
        assert_eq!(written(&svaml)["action"]["future"], json!({"a":[1]}));
        assert_eq!(written(&svaml)["instructions"][0]["voice"], "x");
        assert_eq!(read(&serde_json::to_vec(&svaml).unwrap()), Ok(svaml));
    }

    #[test]
    fn spellings_the_sources_disagree_on_are_read_and_written_one_way() {
        let mxp = br#"{"action":{"name":"connectMxp","callheaders":[{"key":"k","value":"v"}]}}"#;
        let svaml = read(mxp).unwrap();
        assert_eq!(written(&svaml)["action"]["callHeaders"][0]["key"], "k");
        let menu = br#"{"action":{"name":"runMenu","menus":[{"id":"main","options":[{"dtmf":1,"action":"return(one)"}]}]}}"#;
        assert_eq!(
            written(&read(menu).unwrap())["action"]["menus"][0]["options"][0]["dtmf"],
            "1"
        );
    }

    #[test]
    fn unknown_or_nameless_actions_and_instructions_are_refused_with_a_reason() {
        let reason = |body: &[u8]| read(body).unwrap_err();
        assert!(reason(br#"{"action":{"name":"dance"}}"#).contains("unknown action \"dance\""));
        assert!(reason(br#"{"action":{"number":"+1"}}"#).contains("needs a name"));
        assert!(reason(br#"{"action":"hangup"}"#).contains("expected a map"));
        assert!(
            reason(br#"{"instructions":[{"name":"sing"}],"action":{"name":"hangup"}}"#)
                .contains("unknown instruction \"sing\"")
        );
        assert!(reason(br#"{"instructions":[]}"#).contains("missing field `action`"));
        assert!(
            reason(br#"{"action":{"name":"connectPstn","maxDuration":"long"}}"#)
                .contains("connectPstn:")
        );
    }
}
