//! Which SVAML answers each Voice event accepts, the check an application's answer must
//! pass before it is relayed, and the answer given when there is none.
//!
//! Actions per event follow the table in Sinch's SVAML reference (the spec page). Sinch's
//! Functions cheat sheet allows only `continue` and `hangup` after an ACE and lists
//! `continue` for ICE; the Node SDK leaves `connectPstn` out of PIE's type but its helper has
//! it. The reference wins on all three.
//!
//! Which instructions each event allows is not checked: the reference's pages disagree with
//! each other (`sendDtmf` after an ACE) and with the Node SDK's types, so only the shape of
//! each instruction is.

use super::InvalidAnswer;
use super::read_answer;
use super::svaml::{Action, ActionName, Instruction, Menu, RunMenu, Svaml};
use crate::callback::family::OpenName;
use crate::callback::voice::VoiceEvent;

/// The actions Sinch accepts in an answer to `event` (none for DiCE, Notify and unknown
/// events, which take no answer).
pub fn allowed_actions(event: &VoiceEvent) -> &'static [ActionName] {
    use ActionName::*;
    match event {
        VoiceEvent::Ice => &[
            Hangup,
            ConnectPstn,
            ConnectMxp,
            ConnectConf,
            ConnectSip,
            ConnectStream,
            RunMenu,
            Park,
        ],
        VoiceEvent::Ace => &[Hangup, Continue, ConnectConf, RunMenu],
        VoiceEvent::Pie => &[
            Hangup,
            Continue,
            ConnectPstn,
            ConnectConf,
            ConnectSip,
            RunMenu,
        ],
        _ => &[],
    }
}

/// The answer given to `event` when no application or policy gives one:
/// - ICE: `hangup`. Fail closed: nobody decided where this call goes, and Sinch's own
///   behaviour when an ICE goes unanswered is to play an error and disconnect. Passing the
///   call through (`connectPstn` without a number) would place and bill a call that no one
///   configured.
/// - ACE: `continue`. The call was already placed or connected on purpose (by an earlier ICE
///   answer or a callout), and `continue` is what Sinch itself does when an ACE goes
///   unanswered ("the call is connected"); hanging up would cut off a call that was approved.
/// - PIE: `hangup`. A menu asked the application what to do with the caller's input; without
///   its answer there is nothing to continue to.
///
/// `None` for events that take no answer: acknowledge them with an empty 200.
pub fn default_svaml(event: &VoiceEvent) -> Option<Svaml> {
    match event {
        VoiceEvent::Ice | VoiceEvent::Pie => Some(Svaml::hangup()),
        VoiceEvent::Ace => Some(Svaml::continue_call()),
        _ => None,
    }
}

/// Reads and checks an application's answer to `event`; on success, the document to send
/// Sinch (serialised again, in the SDK models' spelling).
pub fn validate_svaml(event: &VoiceEvent, body: &[u8]) -> Result<Svaml, InvalidAnswer> {
    if !event.awaits_answer() {
        return Err(no_answer(event));
    }
    let svaml: Svaml = read_answer(body)?;
    check_svaml(event, &svaml)?;
    Ok(svaml)
}

/// Checks a SVAML document (an application's, or a policy's when configuration is loaded)
/// against what `event` allows.
pub fn check_svaml(event: &VoiceEvent, svaml: &Svaml) -> Result<(), InvalidAnswer> {
    let allowed = allowed_actions(event);
    if allowed.is_empty() {
        return Err(no_answer(event));
    }
    let name = svaml.action.name();
    if !allowed.contains(&name) {
        let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
        return Err(InvalidAnswer::new(format!(
            "{} is not allowed in an answer to {} (allowed: {})",
            name.as_str(),
            event.as_str(),
            names.join(", ")
        )));
    }
    check_action(&svaml.action)?;
    svaml.instructions.iter().try_for_each(check_instruction)
}

fn no_answer(event: &VoiceEvent) -> InvalidAnswer {
    InvalidAnswer::new(format!("{:?} takes no answer", event.as_str()))
}

/// The limits the reference documents for each action.
fn check_action(action: &Action) -> Result<(), InvalidAnswer> {
    match action {
        Action::ConnectPstn(a) => at_most("connectPstn.maxDuration", a.max_duration, 14_400),
        Action::ConnectConf(a) => {
            let id = required("connectConf.conferenceId", a.conference_id.as_deref())?;
            if id.chars().count() > 64 {
                return Err(InvalidAnswer::new(
                    "connectConf.conferenceId is over 64 characters",
                ));
            }
            Ok(())
        }
        Action::ConnectSip(a) => {
            let endpoint = a.destination.as_ref().and_then(|d| d.endpoint.as_deref());
            required("connectSip.destination.endpoint", endpoint).map(drop)
        }
        Action::ConnectStream(a) => {
            let endpoint = a.destination.as_ref().and_then(|d| d.endpoint.as_deref());
            required("connectStream.destination.endpoint", endpoint).map(drop)
        }
        Action::Park(a) => at_most("park.maxDuration", a.max_duration, 600),
        Action::RunMenu(menu) => check_menus(menu),
        Action::Hangup(_) | Action::Continue(_) | Action::ConnectMxp(_) => Ok(()),
    }
}

/// A menu needs its starting menu (`mainMenu`, else `main`), and every option must
/// `return(…)` or go to a menu that exists.
fn check_menus(run: &RunMenu) -> Result<(), InvalidAnswer> {
    let ids: Vec<&str> = run.menus.iter().filter_map(|m| m.id.as_deref()).collect();
    let main = run.main_menu.as_deref().unwrap_or("main");
    if !ids.contains(&main) {
        return Err(InvalidAnswer::new(format!(
            "runMenu has no menu {main:?} to start with"
        )));
    }
    run.menus
        .iter()
        .try_for_each(|menu| check_options(menu, &ids))
}

fn check_options(menu: &Menu, ids: &[&str]) -> Result<(), InvalidAnswer> {
    for option in &menu.options {
        let action = option.action.as_deref().unwrap_or_default();
        let fine = match call_argument(action, "menu") {
            Some(target) => ids.contains(&target),
            None => {
                action.eq_ignore_ascii_case("return") || call_argument(action, "return").is_some()
            }
        };
        if !fine {
            let id = menu.id.as_deref().unwrap_or_default();
            return Err(InvalidAnswer::new(format!(
                "runMenu menu {id:?}: option action {action:?} is neither return(…) nor menu(<a menu id>)"
            )));
        }
    }
    Ok(())
}

/// `x` of `name(x)`, the name in any case.
fn call_argument<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = name.len() + 1;
    let head = text.get(..open)?;
    let named = head
        .get(..name.len())
        .is_some_and(|n| n.eq_ignore_ascii_case(name))
        && head.ends_with('(');
    let argument = text.strip_suffix(')')?.get(open..)?;
    named.then_some(argument)
}

fn check_instruction(instruction: &Instruction) -> Result<(), InvalidAnswer> {
    match instruction {
        Instruction::PlayFiles(p) if p.ids.is_empty() => {
            Err(InvalidAnswer::new("playFiles needs ids"))
        }
        Instruction::Say(s) => required("say.text", s.text.as_deref()).map(drop),
        Instruction::SendDtmf(s) => required("sendDtmf.value", s.value.as_deref()).map(drop),
        Instruction::SetCookie(s) => required("setCookie.key", s.key.as_deref()).map(drop),
        _ => Ok(()),
    }
}

fn required<'a>(what: &str, value: Option<&'a str>) -> Result<&'a str, InvalidAnswer> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| InvalidAnswer::new(format!("{what} is required")))
}

fn at_most(what: &str, value: Option<u32>, limit: u32) -> Result<(), InvalidAnswer> {
    match value {
        Some(v) if v > limit => Err(InvalidAnswer::new(format!(
            "{what} is {v}, over the limit of {limit}"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::answer::answer_fixture;

    fn reason(event: VoiceEvent, body: &str) -> String {
        validate_svaml(&event, body.as_bytes()).unwrap_err().reason
    }

    #[test]
    fn each_event_allows_the_actions_of_the_svaml_reference() {
        use ActionName::*;
        use VoiceEvent::{Ace, Ice, Pie};
        // (action, ICE, ACE, PIE)
        let table = [
            (Hangup, true, true, true),
            (Continue, false, true, true),
            (ConnectPstn, true, false, true),
            (ConnectMxp, true, false, false),
            (ConnectConf, true, true, true),
            (ConnectSip, true, false, true),
            (ConnectStream, true, false, false),
            (RunMenu, true, true, true),
            (Park, true, false, false),
        ];
        for (action, ice, ace, pie) in table {
            for (event, allowed) in [(Ice, ice), (Ace, ace), (Pie, pie)] {
                assert_eq!(
                    allowed_actions(&event).contains(&action),
                    allowed,
                    "{} in {}",
                    action.as_str(),
                    event.as_str()
                );
            }
        }
        assert!(allowed_actions(&VoiceEvent::Dice).is_empty());
    }

    #[test]
    fn the_research_examples_are_valid_answers_where_the_reference_allows_them() {
        use VoiceEvent::{Ace, Ice, Pie};
        let cases = [
            ("ice_connect_pstn.json", [true, false, true]),
            ("ace_continue.json", [false, true, true]),
            ("connect_conf.json", [true, true, true]),
            ("run_menu.json", [true, true, true]),
        ];
        for (name, valid) in cases {
            let body = answer_fixture(&format!("svaml/{name}"));
            for (event, valid) in [Ice, Ace, Pie].into_iter().zip(valid) {
                let result = validate_svaml(&event, &body);
                assert_eq!(
                    result.is_ok(),
                    valid,
                    "{name} for {}: {result:?}",
                    event.as_str()
                );
            }
        }
    }

    #[test]
    fn a_refused_action_names_what_the_event_allows() {
        let body = r#"{"action":{"name":"connectPstn"}}"#;
        assert_eq!(
            reason(VoiceEvent::Ace, body),
            "connectPstn is not allowed in an answer to ace (allowed: hangup, continue, connectConf, runMenu)"
        );
        assert_eq!(reason(VoiceEvent::Dice, body), "\"dice\" takes no answer");
        assert_eq!(
            reason(VoiceEvent::Notify, body),
            "\"notify\" takes no answer"
        );
    }

    #[test]
    fn documented_limits_and_required_fields_are_checked() {
        use VoiceEvent::Ice;
        let long_id = "c".repeat(65);
        let cases = [
            (
                r#"{"action":{"name":"connectPstn","maxDuration":14401}}"#,
                "connectPstn.maxDuration is 14401, over the limit of 14400",
            ),
            (
                r#"{"action":{"name":"connectConf"}}"#,
                "connectConf.conferenceId is required",
            ),
            (
                &format!(r#"{{"action":{{"name":"connectConf","conferenceId":"{long_id}"}}}}"#),
                "connectConf.conferenceId is over 64 characters",
            ),
            (
                r#"{"action":{"name":"connectSip","destination":{"type":"sip"}}}"#,
                "connectSip.destination.endpoint is required",
            ),
            (
                r#"{"action":{"name":"connectStream"}}"#,
                "connectStream.destination.endpoint is required",
            ),
            (
                r#"{"action":{"name":"park","maxDuration":601}}"#,
                "park.maxDuration is 601, over the limit of 600",
            ),
            (
                r#"{"action":{"name":"runMenu","menus":[{"id":"other"}]}}"#,
                "runMenu has no menu \"main\" to start with",
            ),
            (
                r#"{"action":{"name":"runMenu","menus":[{"id":"main","options":[{"dtmf":"1","action":"menu(nowhere)"}]}]}}"#,
                "runMenu menu \"main\": option action \"menu(nowhere)\" is neither return(…) nor menu(<a menu id>)",
            ),
            (
                r#"{"instructions":[{"name":"say"}],"action":{"name":"hangup"}}"#,
                "say.text is required",
            ),
            (
                r#"{"instructions":[{"name":"playFiles","ids":[]}],"action":{"name":"hangup"}}"#,
                "playFiles needs ids",
            ),
            (
                r#"{"instructions":[{"name":"setCookie","value":"v"}],"action":{"name":"hangup"}}"#,
                "setCookie.key is required",
            ),
            (
                r#"{"instructions":[{"name":"sendDtmf"}],"action":{"name":"hangup"}}"#,
                "sendDtmf.value is required",
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(reason(Ice, body), expected, "{body}");
        }
    }

    #[test]
    fn menus_may_return_or_go_to_another_menu_of_theirs() {
        let body = r#"{"action":{"name":"runMenu","mainMenu":"start","menus":[
            {"id":"start","options":[{"dtmf":"1","action":"menu(more)"},{"dtmf":"2","action":"Return(two)"}]},
            {"id":"more","options":[{"dtmf":"9","action":"return"}]}]}}"#;
        assert!(validate_svaml(&VoiceEvent::Pie, body.as_bytes()).is_ok());
        for odd in ["menu(", "menu()", "menü(x)", "return(", "", "goto(start)"] {
            let body = format!(
                r#"{{"action":{{"name":"runMenu","menus":[{{"id":"main","options":[{{"dtmf":"1","action":"{odd}"}}]}}]}}}}"#
            );
            assert!(
                validate_svaml(&VoiceEvent::Ice, body.as_bytes()).is_err(),
                "{odd}"
            );
        }
    }

    #[test]
    fn bodies_that_are_not_svaml_are_invalid_with_a_reason() {
        assert_eq!(
            reason(VoiceEvent::Ice, "{}"),
            "missing field `action` at line 1 column 2"
        );
        assert!(reason(VoiceEvent::Ice, "<Response/>").starts_with("expected value"));
        let not_utf8 = validate_svaml(&VoiceEvent::Ice, b"\xff").unwrap_err();
        assert_eq!(not_utf8.reason, "not UTF-8");
    }

    #[test]
    fn defaults_hang_up_an_unanswered_call_or_menu_and_continue_an_answered_one() {
        let default = |event| default_svaml(&event).map(|s| serde_json::to_string(&s).unwrap());
        assert_eq!(
            default(VoiceEvent::Ice).as_deref(),
            Some(r#"{"action":{"name":"hangup"}}"#)
        );
        assert_eq!(
            default(VoiceEvent::Ace).as_deref(),
            Some(r#"{"action":{"name":"continue"}}"#)
        );
        assert_eq!(
            default(VoiceEvent::Pie).as_deref(),
            Some(r#"{"action":{"name":"hangup"}}"#)
        );
        assert_eq!(default(VoiceEvent::Dice), None);
        assert_eq!(default(VoiceEvent::Notify), None);
        for event in [VoiceEvent::Ice, VoiceEvent::Ace, VoiceEvent::Pie] {
            let svaml = default_svaml(&event).unwrap();
            assert_eq!(check_svaml(&event, &svaml), Ok(()), "{}", event.as_str());
        }
    }
}
