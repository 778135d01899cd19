//! The durablewasm samples written with the Rust guest SDK: the classic
//! Durable Functions patterns E1–E5, HelloWorld, Counter and the bench's
//! Hello5, FanOut, Hello5IO and Hello5CPU, with the same names, inputs and
//! outputs as the Go samples in `samples/flows`.

use durablewasm::Registry;

pub mod backup;
pub mod bench;
pub mod caps;
pub mod counter;
pub mod hello;
pub mod monitor;
pub mod ordered;
pub mod sms;

/// Registers every sample.
pub fn register(r: &mut Registry) {
    r.orchestrator("E1_HelloSequence", hello::hello_sequence)
        .activity("E1_SayHello", hello::say_hello)
        .orchestrator("HelloWorld", hello::hello_world)
        .activity("SayHello", hello::say_hello)
        .orchestrator("E2_BackupSiteContent", backup::backup_site_content)
        .activity("E2_GetFileList", backup::get_file_list)
        .activity("E2_CopyFileToBlob", backup::copy_file_to_blob)
        .orchestrator("E3_Monitor", monitor::monitor)
        .activity("E3_GetIsClear", monitor::get_is_clear)
        .activity("E3_SendGoodWeatherAlert", monitor::send_good_weather_alert)
        .orchestrator("E4_SmsPhoneVerification", sms::sms_phone_verification)
        .activity("E4_SendSmsChallenge", sms::send_sms_challenge)
        .orchestrator("E5_SubOrchestration", hello::sub_orchestration)
        .orchestrator("Counter", counter::counter);
    bench::register(r);
    ordered::register(r);
    caps::register(r);
}

durablewasm::export!(register);

/// FNV-1a, 32 bits (Go's hash/fnv New32a), for the synthetic sample data.
pub fn hash32(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}
