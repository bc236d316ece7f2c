//! Fixed vocabularies of the synthetic corpus: SKUs, features, names, titles, phrases.
//! Changing any list changes every corpus, so bump `GENERATOR_VERSION` when editing.

pub const SEGMENTS: [&str; 3] = ["SMB", "MM", "ENT"];
pub const SEGMENT_WEIGHTS: [f64; 3] = [0.50, 0.35, 0.15];
pub const VERTICALS: [&str; 8] = [
    "FinTech",
    "HealthTech",
    "SaaS",
    "RetailTech",
    "HR Tech",
    "EdTech",
    "Cybersecurity",
    "Logistics",
];
pub const GEOS: [&str; 4] = ["NA", "EMEA", "APAC", "LATAM"];
pub const GEO_WEIGHTS: [f64; 4] = [0.50, 0.28, 0.15, 0.07];
pub const CHANNELS: [&str; 5] = ["inbound", "outbound", "partner", "plg", "events"];
pub const CHANNEL_WEIGHTS: [f64; 5] = [0.34, 0.28, 0.14, 0.14, 0.10];

/// Seat SKU and its list price per seat per month, by segment (USD).
pub const SEAT_SKU: &str = "SEAT-PLATFORM";
pub const SEAT_PRICE_USD: [(i64, i64); 3] = [(35, 55), (55, 85), (85, 130)];
/// Consumption SKU (units: thousand API calls) and its price per unit by segment (cents).
pub const CONSUMPTION_SKU: &str = "API-CALLS";
pub const UNIT_PRICE_CENTS: [(i64, i64); 3] = [(30, 45), (22, 35), (15, 25)];
/// Daily consumption demand by segment (units per day).
pub const DAILY_UNITS: [(f64, f64); 3] = [(60.0, 300.0), (300.0, 2_000.0), (2_000.0, 12_000.0)];
/// Services SKU.
pub const SERVICES_SKU: &str = "SVC-ONBOARDING";
pub const SERVICE_MILESTONES: [&str; 4] = [
    "Solution design",
    "Integration build",
    "Data migration",
    "Go-live support",
];

/// Seats bought by segment.
pub const SEATS: [(i64, i64); 3] = [(5, 40), (30, 200), (150, 1_200)];
pub const EMPLOYEES: [(i64, i64); 3] = [(5, 200), (201, 2_000), (2_001, 40_000)];

/// Features F01–F23 and their categories (SPEC §4 `feature_engagement`).
pub const FEATURES: [(&str, &str); 23] = [
    ("F01", "core"),
    ("F02", "core"),
    ("F03", "core"),
    ("F04", "core"),
    ("F05", "core"),
    ("F06", "core"),
    ("F07", "core"),
    ("F08", "core"),
    ("F09", "advanced"),
    ("F10", "advanced"),
    ("F11", "advanced"),
    ("F12", "advanced"),
    ("F13", "advanced"),
    ("F14", "advanced"),
    ("F15", "integration"),
    ("F16", "integration"),
    ("F17", "integration"),
    ("F18", "integration"),
    ("F19", "admin"),
    ("F20", "admin"),
    ("F21", "admin"),
    ("F22", "experimental"),
    ("F23", "experimental"),
];

pub const ONBOARDING: [(&str, &str, i32); 7] = [
    ("M1", "Kickoff", 7),
    ("M2", "Admin setup", 14),
    ("M3", "SSO and provisioning", 30),
    ("M4", "Data import", 45),
    ("M5", "Team training", 60),
    ("M6", "First value", 75),
    ("M7", "Adoption review", 90),
];

pub const TECH_MILESTONES: [(&str, i32); 5] = [
    ("sandbox_validated", 10),
    ("sso_configured", 25),
    ("api_integrated", 40),
    ("data_pipeline_live", 60),
    ("production_cutover", 80),
];

pub const FIRST_NAMES: [&str; 40] = [
    "Ada", "Ben", "Carla", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi",
    "Luca", "Maya", "Nikhil", "Olivia", "Pavel", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera",
    "Wen", "Ximena", "Yusuf", "Zoe", "Arjun", "Bea", "Chen", "Dara", "Emil", "Fatima", "Gus",
    "Hana", "Ivan", "Jade", "Kofi", "Lena", "Marco", "Noor",
];
pub const LAST_NAMES: [&str; 40] = [
    "Adams",
    "Bauer",
    "Costa",
    "Diaz",
    "Evans",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ito",
    "Jensen",
    "Khan",
    "Lopez",
    "Meyer",
    "Nakamura",
    "Okafor",
    "Patel",
    "Quist",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Usman",
    "Varga",
    "Walsh",
    "Xu",
    "Yilmaz",
    "Zimmer",
    "Alvarez",
    "Brooks",
    "Chowdhury",
    "Dubois",
    "Eriksen",
    "Fontaine",
    "Gupta",
    "Hansen",
    "Ibrahim",
    "Jovanovic",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novak",
];

pub const NAME_PREFIX: [&str; 32] = [
    "Stark", "Blue", "North", "Bright", "Iron", "Silver", "Nova", "Apex", "Clear", "Swift", "True",
    "Open", "Vast", "Prime", "Keystone", "Harbor", "Summit", "Crescent", "Granite", "Pioneer",
    "Atlas", "Beacon", "Cobalt", "Delta", "Ember", "Falcon", "Helix", "Juniper", "Lumen",
    "Meridian", "Orbit", "Quartz",
];
/// One word list per vertical, same order as `VERTICALS`.
pub const NAME_SUFFIX: [[&str; 4]; 8] = [
    ["Capital", "Ledger", "Pay", "Finance"],
    ["Health", "Care", "Clinics", "Bio"],
    ["Software", "Cloud", "Systems", "Labs"],
    ["Retail", "Commerce", "Stores", "Brands"],
    ["People", "Talent", "Workforce", "HR"],
    ["Learning", "Academy", "Education", "Tutors"],
    ["Security", "Shield", "Defense", "Guard"],
    ["Logistics", "Freight", "Shipping", "Supply"],
];

pub fn titles(persona: &str) -> &'static [&'static str] {
    match persona {
        "economic_buyer" => &[
            "VP Revenue Operations",
            "Chief Operating Officer",
            "CFO",
            "VP Sales",
        ],
        "champion" => &[
            "Director of Revenue Operations",
            "Head of Sales Ops",
            "Director of Growth",
        ],
        "technical_evaluator" => &["Staff Engineer", "IT Director", "Solutions Architect"],
        "end_user" => &[
            "Account Executive",
            "SDR",
            "Customer Success Manager",
            "Analyst",
        ],
        "procurement" => &["Procurement Manager", "Vendor Manager"],
        _ => &["Operations Manager", "Program Manager", "Marketing Manager"],
    }
}

pub const COMPETITORS: [&str; 5] = ["Northwind", "Contoso", "Fabrikam", "Initech", "Globex"];
pub const OBJECTIONS: [&str; 6] = [
    "price",
    "security_review",
    "integration_effort",
    "timing",
    "budget",
    "adoption",
];
pub const LOSS_REASONS: [&str; 5] = [
    "price",
    "competitor",
    "no_decision",
    "timing",
    "missing_feature",
];
pub const CORRECTION_REASONS: [&str; 4] = [
    "meter recount",
    "late batch reconciliation",
    "duplicate meter read removed",
    "time zone boundary fix",
];
pub const TICKET_CATEGORIES: [&str; 6] = [
    "bug",
    "how_to",
    "performance",
    "integration",
    "billing",
    "access",
];

pub const CALL_TOPICS_GOOD: [&str; 4] = [
    "reviewed adoption wins and next quarter goals",
    "walked through new reporting workflows",
    "planned rollout to an additional team",
    "discussed roadmap and integration ideas",
];
pub const CALL_TOPICS_BAD: [&str; 4] = [
    "raised concerns about value for the price",
    "reported slow responses and open bugs",
    "questioned renewal given low usage",
    "mentioned evaluating an alternative vendor",
];
pub const NPS_VERBATIM_GOOD: [&str; 3] = [
    "Core to how our team works.",
    "Great support and reliable.",
    "Saves us hours every week.",
];
pub const NPS_VERBATIM_BAD: [&str; 3] = [
    "Hard to get value since our lead left.",
    "Too expensive for what we use.",
    "Support is slow lately.",
];

pub const ACTION_TYPES: [&str; 4] = [
    "email_generation",
    "outreach_push",
    "linkedin_audience_push",
    "paid_audience_push",
];
pub const ACTION_WEIGHTS: [f64; 4] = [0.45, 0.30, 0.15, 0.10];
/// Cost of one decision by action type, cents range.
pub const ACTION_COST_CENTS: [(i64, i64); 4] = [(2, 12), (10, 60), (80, 300), (150, 800)];
pub const PLAYS: [&str; 6] = [
    "PLAY-PRICING-FOLLOWUP",
    "PLAY-COMPETITOR-DISPLACE",
    "PLAY-ABM-TIER1",
    "PLAY-NURTURE-EDU",
    "PLAY-REENGAGE",
    "PLAY-EVENT-FOLLOWUP",
];

/// TOOL-015's injected truth (`synth::margin`): the share of consumption customers that take a
/// list-price increase at a renewal, and its size (fraction).
pub const PRICE_INCREASE_SHARE: f64 = 0.25;
pub const PRICE_INCREASE: (f64, f64) = (0.08, 0.15);
/// Deployment tiers of the backend, cheapest to serve last.
pub const TIERS: [&str; 3] = ["shared", "dedicated", "byoc"];
/// Backend cost per unit on each tier, as a fraction of the account's first unit price.
pub const TIER_COST_SHARE: [(f64, f64); 3] = [(0.40, 0.50), (0.25, 0.32), (0.08, 0.12)];
/// Share of consumption customers with a backend-cost shock on the shared tier (a provider's
/// price change from a quarter's first month), and its size.
pub const COST_SHOCK_SHARE: f64 = 0.20;
pub const COST_SHOCK: (f64, f64) = (0.15, 0.30);
/// Share of consumption customers that migrate part of their shared-tier traffic to dedicated
/// from a quarter's first month, and the share of all traffic moved.
pub const TIER_MIGRATION_SHARE: f64 = 0.15;
pub const TIER_MIGRATION: (f64, f64) = (0.20, 0.40);
/// Share of consumption customers whose cost feed missed one month.
pub const COST_GAP_SHARE: f64 = 0.05;
/// The ICP's vertical lists as the project's defaults name them (`icp_target_verticals`, and
/// neither target nor adjacent), as indices into `VERTICALS`, and how often an account's story
/// pulls its vertical into them (`plan::icp_vertical`).
pub const ICP_TARGET_VERTICALS: [usize; 3] = [0, 2, 6];
pub const ICP_OTHER_VERTICALS: [usize; 3] = [3, 5, 7];
pub const ICP_PULL: f64 = 0.6;
