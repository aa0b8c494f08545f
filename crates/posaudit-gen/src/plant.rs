//! Planted violations: one pattern per violating merchant, and the rules
//! each pattern must trigger (and no others). The demo and the tests rely on
//! this table: a scan finds exactly these, and nothing on clean merchants.

macro_rules! plants {
    ($($name:ident => [$($rule:literal),+]),+ $(,)?) => {
        /// The patterns planted on violating merchants.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Plant { $($name),+ }

        impl Plant {
            pub const ALL: &'static [Plant] = &[$(Plant::$name),+];

            /// The rules this pattern triggers, and no others.
            pub fn rules(self) -> &'static [&'static str] {
                match self { $(Plant::$name => &[$($rule),+]),+ }
            }
        }
    };
}

plants! {
    BadUscc => ["DOC-USCC-01"],
    BadOrgCode => ["DOC-USCC-03"],
    UsccPrefix => ["DOC-USCC-02"],
    ExpiredLicense => ["DOC-LIC-01"],
    LicenseExpiring => ["DOC-LIC-02"],
    BadId => ["DOC-ID-01"],
    LegacyId => ["DOC-ID-08"],
    BadBirthDate => ["DOC-ID-02"],
    MinorRep => ["DOC-ID-03"],
    Over65 => ["DOC-ID-04"],
    IdExpired => ["DOC-ID-05"],
    IdTermBad => ["DOC-ID-06"],
    IdExpiring => ["DOC-ID-07"],
    StlOtherName => ["DOC-STL-01"],
    StlEnterprisePersonal => ["DOC-STL-02"],
    StlLuhn => ["DOC-STL-03"],
    SharedAccount => ["DOC-STL-04", "DOC-LIC-03"],
    ThirdPartyAccount => ["DOC-LIC-03"],
    MissingDocs => ["DOC-DOCS-01"],
    MicroTriplet => ["DOC-XW-01"],
    FiveMerchants => ["DOC-XW-02"],
    SharedTerminal => ["DOC-TERM-01"],
    SharedPhone => ["DOC-PHONE-01"],
    UnlistedModel => ["DOC-TERM-03"],
    UnknownMcc => ["DOC-MCC-01"],
    MidMccMismatch => ["DOC-MID-01"],
    IncompleteFees => ["DOC-FEE-01"],
    SlowReview => ["DOC-PROC-01"],
    ReviewBeforeSubmit => ["DOC-PROC-02"],
    InstalledEarly => ["DOC-PROC-03"],
    OverTerminalLimit => ["LIM-TERM-01"],
    StaticQr => ["LIM-QR-01", "SUS-CASH-02"],
    MicroDaily => ["LIM-MICRO-01"],
    MicroMonthly => ["LIM-MICRO-02"],
    VolumeOver => ["LIM-VOL-01"],
    PersonalLarge => ["LIM-AML-01"],
    CorporateLarge => ["LIM-AML-02"],
    FeeOvercharge => ["FEE-REC-01"],
    FixedAddon => ["FEE-ADD-01", "FEE-REC-01"],
    DebitOverCap => ["FEE-CAP-01", "FEE-REC-01"],
    ShortNotice => ["FEE-CHG-01", "FEE-CHG-02"],
    RiseThenCut => ["FEE-CHG-03", "FEE-CHG-02"],
    SimUndisclosed => ["FEE-SIM-01"],
    SimAbove => ["FEE-SIM-02"],
    SimTwice => ["FEE-SIM-03"],
    DepositUndisclosed => ["FEE-DEP-01"],
    DepositNotRefunded => ["FEE-DEP-02"],
    Membership => ["FEE-OPT-01"],
    WaivedAtStandard => ["FEE-CLS-01"],
    Split => ["SUS-SPLIT-01", "SUS-TIME-02"],
    RoundAmounts => ["SUS-CASH-01", "SUS-CASH-03", "SUS-CASH-04"],
    BigTicket => ["SUS-CASH-04"],
    UnderLimit => ["SUS-UNDER-01"],
    NightTrading => ["SUS-TIME-01"],
    NearLimitHabit => ["SUS-UNDER-02"],
    RefundHeavy => ["SUS-REF-01"],
    RefundBad => ["SUS-REF-02"],
    CardHopper => ["SUS-CARD-01"],
    CardBurst => ["SUS-CARD-02"],
    CreditShare => ["SUS-CASH-03"],
    MccJumpSame => ["SUS-MCC-01"],
    MccJumpCheaper => ["SUS-MCC-01", "SUS-MCC-02"],
    OtherCity => ["SUS-LOC-01"],
    OtherProvince => ["SUS-LOC-02"],
    FarAway => ["SUS-LOC-03"],
    NewSpike => ["SUS-NEW-01", "LIM-VOL-01"],
    NewSpikePeers => ["SUS-NEW-02"],
    Dormant => ["SUS-DORM-01"],
    SecondClearing => ["SUS-2Q-01"],
    DuplicateTxn => ["SUS-DUP-01"],
}

/// Days a plant's transactions span, counted from its plant day.
pub fn span_days(p: Plant) -> u32 {
    match p {
        Plant::MicroMonthly => 5,
        _ => 1,
    }
}

impl Plant {
    /// Patterns whose point is the declared monthly volume: it is set by
    /// the plant, not scaled to the merchant's size.
    pub fn sets_declared(self) -> bool {
        matches!(
            self,
            Plant::MicroDaily
                | Plant::MicroMonthly
                | Plant::VolumeOver
                | Plant::PersonalLarge
                | Plant::CorporateLarge
                | Plant::NewSpike
                | Plant::NewSpikePeers
        )
    }

    /// Patterns measured against the merchants of the same MCC: the
    /// planted merchant takes the most common code, so it has peers.
    pub fn needs_peers(self) -> bool {
        matches!(
            self,
            Plant::NewSpikePeers | Plant::BigTicket | Plant::RoundAmounts | Plant::CardBurst
        )
    }
}
