//! Workflows built from tasks: [`TaskGroup`] and prebuilt collection tasks.
//!
//! The prebuilt tasks each collect one thing from the caller and complete with a typed result:
//!
//! | Task | Result | Tools |
//! |---|---|---|
//! | [`GetEmailTask`] | [`GetEmailResult`] | `update_email_address`, `confirm_email_address`, `decline_email_capture` |
//! | [`GetNameTask`] | [`GetNameResult`] | `update_name`, `confirm_name`, `decline_name_capture` |
//! | [`GetPhoneNumberTask`] | [`GetPhoneNumberResult`] | `update_phone_number`, `confirm_phone_number`, `decline_phone_number_capture` |
//! | [`GetAddressTask`] | [`GetAddressResult`] | `update_address`, `confirm_address`, `decline_address_capture` |
//! | [`GetDobTask`] | [`GetDobResult`] | `update_dob`, `update_time`, `confirm_dob`, `decline_dob_capture` |
//! | [`GetConsentTask`] | [`GetConsentResult`] | `record_consent`, `confirm_consent`, `decline_consent_capture` |
//! | [`GetCreditCardTask`] | [`GetCreditCardResult`] | a [`TaskGroup`] of card steps, with `decline_card_capture`, `restart_card_collection` |
//! | [`GetDtmfTask`] | [`GetDtmfResult`] | keypad input, `record_inputs`, `confirm_inputs`, `decline_dtmf_capture` |
//!
//! They share one pattern (see [`common`]): ask on enter, validate and normalise in the
//! `update_*` tool (problems go back to the model as instructions), read back and confirm when
//! confirmation is required (`confirm_*` tools only exist then), fail with
//! `couldn't get the …: <reason>` through `decline_*`. Each is generic over the session's user
//! data, has a `Default`, a `prompt()` (the instruction given on enter, which scripted models
//! key on) and customisable [`WorkflowInstructions`].

pub mod address;
pub mod common;
pub mod consent;
pub mod credit_card;
pub mod date;
pub mod dob;
pub mod dtmf;
pub mod email;
pub mod name;
pub mod phone;
mod task_group;

pub use address::{GetAddressResult, GetAddressTask};
pub use common::{InvalidInput, WorkflowInstructions};
pub use consent::{GetConsentResult, GetConsentTask};
pub use credit_card::{
    CardIssuer, GetCardNumberResult, GetCardNumberTask, GetCreditCardResult, GetCreditCardTask,
    GetExpirationDateResult, GetExpirationDateTask, GetSecurityCodeResult, GetSecurityCodeTask,
};
pub use date::{CalendarDate, TimeOfDay};
pub use dob::{GetDobResult, GetDobTask};
pub use dtmf::{DtmfEvent, DtmfInput, GetDtmfResult, GetDtmfTask};
pub use email::{GetEmailResult, GetEmailTask};
pub use name::{GetNameResult, GetNameTask, NameParts};
pub use phone::{GetPhoneNumberResult, GetPhoneNumberTask};
pub use task_group::{StepCompleted, StepKey, TaskGroup, TaskGroupResults};
