//! Any text as an exceptions file and as a scoring file: parsed or
//! refused with located problems, never a panic; a scoring file that
//! parses is checked and its own cases run.
#![no_main]
use libfuzzer_sys::fuzz_target;
use posaudit::findings::cases::ScoringFile;
use posaudit::findings::exceptions::Exceptions;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Exceptions::parse("exceptions.yaml", text);
    if let Ok(s) = ScoringFile::parse("scoring.yaml", text.to_string()) {
        let _ = s.check(&Default::default());
        let _ = s.scoring.run_tests(&Default::default());
        let _ = s.scoring.cases(&[], &Default::default(), &Default::default());
    }
});
