//! Normalisation of Indonesian person names into a matching key.
//!
//! This module owns everything that turns a name as typed into an agency spreadsheet
//! (`Hj. Siti Aminah, S.Pd`, `DRS. H. MOCH. YUSUF, M.M`, `SOEMIJATI BINTI ABD. MANAF`) into
//! a comparable key (`SITI AMINAH`, `MUHAMMAD YUSUF`, `SUMIYATI`), keeping what it removed
//! (titles, degrees, the father's name) beside the key instead of throwing it away. It also
//! owns [`token_key`], the phonetic-ish per-token key used later for blocking. Everything is
//! pure std and per-value; the key is a matching key, not a display name.
//!
//! [`normalize_name`] applies these rules, in this order:
//!
//! 1. **Clean.** Upper-case (Unicode aware) and fold accented Latin letters to ASCII
//!    (`É`->`E`, `Ü`->`U`, `Ṣ`->`S`; combining marks are dropped). Apostrophes and backticks
//!    are deleted inside words (`NU'MAN` -> `NUMAN`), digits are deleted, and every other
//!    character except letters, `.` and `,` becomes a space (hyphens, slashes, underscores,
//!    brackets...). Non-Latin letters are kept as they are.
//! 2. **Leading titles** ([`LEADING_TITLES`]) are removed into `titles`, repeatedly, while at
//!    least one other token follows (a single token is never a title: `HAJI` stays a name).
//!    South Sulawesi `ANDI` and `DAENG` are not in the list: `ANDI` is also one of the most
//!    common given names, so both stay in the key (`ANDI MALLARANGENG`).
//!    Titles are matched with dots removed (`K.H.` -> `KH`) and also after the spelling map of
//!    rule 5 (`HADJI` -> `HAJI`, `TJOET` -> `CUT`); they are recorded in that dotless form.
//!    Single letters: `H` at the start is always the pilgrimage title (`H. ABDUL`), `K. H.` is
//!    `KH`, and `R` is the title Raden only when written `R.` or followed by at least two more
//!    tokens (`R. SOEHARTO`, `R AHMAD SUBARDJO`; but `R SOEHARTO` keeps `R` as an initial).
//!    Every other single letter is an initial. Balinese `I`/`NI`/`I GUSTI` are not handled.
//! 3. **Degrees** are removed into `titles`, written upper-case with their dots tidied
//!    (`S.Pd.` -> `S.PD`, `SPd` -> `SPD`):
//!    - after the first comma, when every comma-separated part looks like a degree (a known
//!      degree or post-comma title, or a dotted abbreviation like `S.KOM.I`; `S. Pd` is
//!      read as `S.PD`). Otherwise the comma is only a separator (`SITI, AMINAH`);
//!    - at the end without a comma, repeatedly, when the token is a known degree written with
//!      an inner dot (`S.T`, `A.MD`) or one of the unambiguous bare forms
//!      ([`BARE_DEGREES`]: `SPD`, `SE`, `SH`, `MM`, `AMD`...). Bare forms that could be name
//!      parts (`ST`, `SS`, `MA`...) stay. `ALM`/`ALMH` (deceased) at the end go the same way.
//!      At least one name token is always kept.
//!
//!    Titles come first in `titles` (as found), then trailing degrees, then comma degrees.
//! 4. **Patronymic.** The first `BIN`, `BINTI` or `BT` that is not the first token splits the
//!    name: what follows is the father's name (`patronymic`), normalised with rules 2 and
//!    5-7 (his leading titles are dropped, not recorded). A marker with nothing after it is
//!    dropped. A leading `BIN` stays in the name.
//! 5. **Pre-1972 spelling**, per token, scanning left to right: `OE`->`U`, `DJ`->`J`,
//!    `TJ`->`C` (`TJH`->`C`, the Hokkien form), `SJ`->`SY`, `CH`->`KH`, `NJ`->`NY`, and
//!    `J`->`Y`. `J`->`Y` applies only in a token with another old sign (`OE`, `DJ`, `TJ`, `SJ`,
//!    or `NJ` at the start), and a `J` made from `DJ` stays `J`. `NJ` in the middle of a word
//!    maps only under the same condition: modern names have the `n`+`j` cluster (`SANJAYA`,
//!    `PANJI`, `ANJANI`) and old `SANDJAJA` becomes modern `SANJAYA`, so mapping it always
//!    would not be idempotent. `CH`->`KH` always applies (so `CHANDRA` -> `KHANDRA` on every
//!    side). `old_spelling` is set when this rule changed a name or patronymic token by a
//!    sign other than `CH` (`OE`, `DJ`, `TJ`, `SJ`, `NJ`, and the `J` they license): modern
//!    names have `CH` too, so `MICHAEL`, `RICHARD`, `CHANDRA` alone do not set it.
//! 6. **Variants** ([`VARIANTS`]) are unified whole-token, looked up on the token as written
//!    and again after rule 5: `MOCH`, `MUH`, `MHD`... -> `MUHAMMAD`, `ABD` -> `ABDUL`,
//!    `ACHMAD` -> `AHMAD`, `SITTI` -> `SITI`. A first token `M` followed by more tokens is
//!    `MUHAMMAD` (and not an initial).
//! 7. **Initials.** Remaining single-letter tokens (`S.`, `S`) stay in the key as the letter
//!    and are listed in `initials`. Dotted words that are not titles are split at the dots
//!    (`H.M.YUSUF` -> `H M YUSUF`).
//! 8. **Join** with single spaces. Empty, blank or punctuation-only input (`-`) gives the
//!    default (empty) result.
//!
//! The result is idempotent: normalising a key again returns the same key.

/// Result of normalising one name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NormalizedName {
    /// Matching key: upper-case tokens joined by one space, e.g. `MUHAMMAD YUSUF`; empty if
    /// nothing is left.
    pub name: String,
    /// Removed titles, honorifics and degrees in canonical form, in the order described in the
    /// module documentation, e.g. `["H", "DRS", "S.PD"]`.
    pub titles: Vec<String>,
    /// Father's name after `BIN`/`BINTI`/`BT`, normalised the same way, e.g. `ABU BAKAR`.
    pub patronymic: Option<String>,
    /// Single-letter tokens kept in `name` that are initials, e.g. `["S"]` for `S. AMINAH`.
    pub initials: Vec<String>,
    /// True when pre-1972 spelling (rule 5) was mapped in the name or patronymic by a sign
    /// other than `CH` alone (`SOEMIJATI`: yes; `MICHAEL` -> `MIKHAEL`: no).
    pub old_spelling: bool,
}

/// Titles and honorifics removed from the start of a name (rule 2), in dotless form.
/// `R` (Raden) and `K H` are handled in code because they look like initials.
#[rustfmt::skip]
pub const LEADING_TITLES: &[&str] = &[
    // pilgrimage
    "H", "HJ", "HJH", "HAJI", "HAJJAH", "HAJAH",
    // Mr, Mrs, brother, sister, father, mother
    "NY", "NYONYA", "TN", "TUAN", "SDR", "SDRI", "SDRA", "BP", "BPK", "BAPAK", "IBU",
    // academic
    "DRS", "DRA", "IR", "DR", "PROF",
    // religious
    "KH", "UST", "USTADZ", "USTAZ", "USTADZAH", "USTAZAH",
    // Javanese and Sundanese nobility
    "RADEN", "RD", "RA", "RR",
    // Banten
    "TUBAGUS", "TB", "RATU",
    // Aceh
    "TEUKU", "TGK", "TEUNGKU", "CUT",
    // South Sulawesi ANDI / DAENG are deliberately absent: ANDI is a very common given name.
    // Bali / Lombok (only the word itself)
    "GUSTI",
    // deceased
    "ALM", "ALMH", "ALMARHUM", "ALMARHUMAH",
];

/// Titles also accepted after a comma, where they are read like degrees (`ABDULLAH, H.`).
#[rustfmt::skip]
pub const POST_COMMA_TITLES: &[&str] = &[
    "H", "HJ", "HJH", "HAJI", "HAJJAH", "HAJAH", "DRS", "DRA", "IR", "DR", "PROF", "KH", "ALM",
    "ALMH", "ALMARHUM", "ALMARHUMAH",
];

/// Known academic and professional degrees, in dotless form (rule 3). After a comma any of
/// these is removed; at the end of a name without a comma only when written with an inner dot
/// (`S.T`) or listed in [`BARE_DEGREES`].
#[rustfmt::skip]
pub const DEGREES: &[&str] = &[
    // bachelor (sarjana)
    "SPD", "SPDI", "SPDSD", "SE", "SEI", "SEAK", "SH", "SHI", "SKOM", "SKOMI", "SAG", "SSOS",
    "SSOSI", "SIP", "SIKOM", "ST", "SKM", "SKEP", "SFARM", "SSI", "SS", "SP", "SPSI", "SKED",
    "SKG", "STP", "SPT", "SKEB", "SGZ", "SAK", "SHUT", "SPI", "STH", "SSN", "SSTP", "SST",
    "STR", "SDS", "SPAR", "SAN", "SSY",
    // master (magister)
    "MM", "MSI", "MPD", "MPDI", "MAG", "MKES", "MH", "MHI", "MT", "MKOM", "MSC", "MBA", "MA",
    "MHUM", "MPH", "MKEP", "MEI", "MAP", "MIKOM", "MSE", "MAK", "MFARM", "MKM", "MTI", "MPSI",
    // diploma (ahli madya / ahli muda)
    "AMD", "AMK", "AMA", "AMAPD", "AMDKEB", "AMDKEP", "AMDKES", "AMDKOM", "AMDFARM", "AMKEB",
    "AMKEP", "AMG", "AMF", "AMR", "AMPD", "AMDGZ", "AMDAK", "AMKL", "AMAK", "AMDPAR",
    // professional, medical specialists, doctorate, foreign
    "APT", "NERS", "NS", "AK", "LC", "SPOG", "SPA", "SPB", "SPPD", "SPM", "SPKK", "SPTHT",
    "SPJP", "SPS", "SPOT", "SPAN", "SPRAD", "SPKJ", "SPU", "SPBS", "PHD", "MD", "BSC", "BA",
];

/// Degrees removed at the end of a name even without dots or a comma: forms that are not
/// plausible name parts. `ST`, `SS`, `SP`, `MA`, `MT`, `AMA`, `SIP`... are not here.
#[rustfmt::skip]
pub const BARE_DEGREES: &[&str] = &[
    "SPD", "SPDI", "SE", "SEI", "SH", "SHI", "SKOM", "SKOMI", "SAG", "SSOS", "SSOSI", "SKM",
    "SKEP", "SFARM", "SPSI", "SSI", "STP", "SKEB", "MM", "MSI", "MPD", "MPDI", "MAG", "MKES",
    "MH", "MKOM", "MSC", "MBA", "MHUM", "AMD", "AMK", "AMKEB", "AMDKEB", "AMDKEP", "AMDKES",
    "SPOG", "PHD", "BSC",
];

/// Honorifics removed at the end of a name without a comma (`SUPARMAN (ALM)`).
pub const TRAILING_HONORIFICS: &[&str] = &["ALM", "ALMH", "ALMARHUM", "ALMARHUMAH"];

/// Markers that introduce the father's name (rule 4), in dotless form.
pub const PATRONYMIC_MARKERS: &[&str] = &["BIN", "BINTI", "BT"];

/// Whole-token variants and abbreviations unified by rule 6: `(variant, canonical)`.
/// Forms after the spelling map (`MOKHAMMAD` from `MOCHAMMAD`) are listed too.
pub const VARIANTS: &[(&str, &str)] = &[
    ("MUHAMAD", "MUHAMMAD"),
    ("MOHAMAD", "MUHAMMAD"),
    ("MOHAMMAD", "MUHAMMAD"),
    ("MOHAMMED", "MUHAMMAD"),
    ("MOHAMED", "MUHAMMAD"),
    ("MUHAMMED", "MUHAMMAD"),
    ("MUHAMED", "MUHAMMAD"),
    ("MOCHAMMAD", "MUHAMMAD"),
    ("MOCHAMAD", "MUHAMMAD"),
    ("MOKHAMMAD", "MUHAMMAD"),
    ("MOKHAMAD", "MUHAMMAD"),
    ("MUCHAMMAD", "MUHAMMAD"),
    ("MUCHAMAD", "MUHAMMAD"),
    ("MUKHAMMAD", "MUHAMMAD"),
    ("MUKHAMAD", "MUHAMMAD"),
    ("MOCH", "MUHAMMAD"),
    ("MOKH", "MUHAMMAD"),
    ("MUCH", "MUHAMMAD"),
    ("MUKH", "MUHAMMAD"),
    ("MOH", "MUHAMMAD"),
    ("MUH", "MUHAMMAD"),
    ("MHD", "MUHAMMAD"),
    ("MUHD", "MUHAMMAD"),
    ("MOHD", "MUHAMMAD"),
    ("ABD", "ABDUL"),
    ("ACHMAD", "AHMAD"),
    ("AKHMAD", "AHMAD"),
    ("ACHMAT", "AHMAD"),
    ("AKHMAT", "AHMAD"),
    ("AHMAT", "AHMAD"),
    ("AHMED", "AHMAD"),
    ("SITTI", "SITI"),
];

/// Normalises one raw name into a matching key plus what was removed (see the module
/// documentation for the rules and their order).
pub fn normalize_name(raw: &str) -> NormalizedName {
    let cleaned = clean(raw);

    // Rule 3 (comma part): degrees after the first comma.
    let (head, comma_degrees) = match cleaned.split_once(',') {
        Some((head, tail)) => match degree_tail(tail) {
            Some(degrees) => (head.to_owned(), degrees),
            None => (cleaned.replace(',', " "), Vec::new()),
        },
        None => (cleaned, Vec::new()),
    };
    let mut toks = tokenize(&head);

    // Rule 3 (trailing part): degrees at the end without a comma.
    let mut trailing = Vec::new();
    while toks.len() > 1 && toks.last().is_some_and(is_trailing_degree) {
        if let Some(tok) = toks.pop() {
            trailing.push(tok.written);
        }
    }
    trailing.reverse();

    // Rule 2: leading titles.
    let (mut titles, start) = strip_titles(&toks);
    titles.extend(trailing);
    titles.extend(comma_degrees);
    let rest = toks.get(start..).unwrap_or_default();

    // Rule 4: patronymic.
    let marker = rest
        .iter()
        .skip(1)
        .position(|t| contains(PATRONYMIC_MARKERS, &t.text))
        .map(|p| p + 1);
    let (own, father) = match marker {
        Some(p) => (
            rest.get(..p).unwrap_or_default(),
            rest.get(p + 1..).unwrap_or_default(),
        ),
        None => (rest, &[][..]),
    };

    // Rules 5-7.
    let mut old_spelling = false;
    let words = canonical_words(&expand(own), &mut old_spelling);
    let (_, father_start) = strip_titles(father);
    let father_words = canonical_words(
        &expand(father.get(father_start..).unwrap_or_default()),
        &mut old_spelling,
    );

    let initials = words
        .iter()
        .filter(|w| w.chars().count() == 1)
        .cloned()
        .collect();
    NormalizedName {
        name: words.join(" "),
        titles,
        patronymic: (!father_words.is_empty()).then(|| father_words.join(" ")),
        initials,
        old_spelling,
    }
}

/// Tokens of a normalised key (split on spaces, empty pieces skipped).
pub fn name_tokens(key: &str) -> impl Iterator<Item = &str> {
    key.split(' ').filter(|t| !t.is_empty())
}

/// Phonetic-ish blocking key for one name token, tolerant of common Indonesian spelling
/// variation. Steps, in order:
///
/// 1. Upper-case, fold accents, keep letters only (as rule 1 of [`normalize_name`]).
/// 2. Unify the token as [`normalize_name`] does: variant table, pre-1972 spelling map
///    (`SOEMIJATI` -> `SUMIYATI`, `MOCH` -> `MUHAMMAD`).
/// 3. Left to right, replace `KH`->`H`, `SY`->`S`, `SH`->`S`, `TH`->`T`, `DH`->`D`,
///    `GH`->`G`, `PH`->`P`, `DZ`->`J`, `Z`->`J`, `F`->`P`, `V`->`P`, `Q`->`K`
///    (Arabic transliteration and Sundanese `F`/`P`, `Z`/`J` variation: `KHASAN`/`HASAN`,
///    `YUSUF`/`YUSUP`, `ZAINAL`/`JAINAL`).
/// 4. Drop one final `H` (`AMINAH`/`AMINA`).
/// 5. Collapse runs of the same letter (`MUHAMMAD` -> `MUHAMAD`).
/// 6. Keep the first letter as it is; drop every later vowel `A E I O U` and `Y`.
/// 7. Keep at most 6 letters.
///
/// So `MUHAMMAD`, `MUHAMAD`, `MOCHAMAD` all give `MHMD`; `SUMIYATI`, `SOEMIJATI`,
/// `SUMIATI` give `SMT`; `SITI` gives `ST` and `SRI` gives `SR`. A leading vowel is kept, so
/// `OSMAN` (`OSMN`) and `USMAN` (`USMN`) differ.
pub fn token_key(token: &str) -> String {
    let mut letters = String::with_capacity(token.len());
    for c in token.chars().flat_map(char::to_uppercase) {
        match c {
            'A'..='Z' => letters.push(c),
            c if c.is_ascii() => {}
            c => fold_into(c, &mut letters),
        }
    }
    letters.retain(|c| c != ' ');
    let (word, _) = canonical_word(&letters);

    // Step 3.
    let chars: Vec<char> = word.chars().collect();
    let mut mapped: Vec<char> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let next = chars.get(i + 1).copied();
        let (out, len) = match (c, next) {
            ('K', Some('H')) => ('H', 2),
            ('S', Some('Y' | 'H')) => ('S', 2),
            ('T', Some('H')) => ('T', 2),
            ('D', Some('H')) => ('D', 2),
            ('G', Some('H')) => ('G', 2),
            ('P', Some('H')) => ('P', 2),
            ('D', Some('Z')) => ('J', 2),
            ('Z', _) => ('J', 1),
            ('F' | 'V', _) => ('P', 1),
            ('Q', _) => ('K', 1),
            (c, _) => (c, 1),
        };
        mapped.push(out);
        i += len;
    }
    // Step 4.
    if mapped.len() > 1 && mapped.last() == Some(&'H') {
        mapped.pop();
    }
    // Step 5.
    mapped.dedup();
    // Steps 6 and 7.
    let mut key = String::with_capacity(6);
    for (i, c) in mapped.into_iter().enumerate() {
        if i == 0 || !matches!(c, 'A' | 'E' | 'I' | 'O' | 'U' | 'Y') {
            key.push(c);
            if key.chars().count() == 6 {
                break;
            }
        }
    }
    key
}

/// One whitespace-separated token of the name part.
#[derive(Debug, Clone)]
struct Tok {
    /// Dotless text (`KH` for `K.H.`).
    text: String,
    /// As written with inner dots kept and outer dots trimmed (`S.PD` for `S.Pd.`).
    written: String,
    /// Written with a dot after it or inside it (`R.`, `K.H`).
    dotted: bool,
}

fn contains(list: &[&str], s: &str) -> bool {
    list.contains(&s)
}

/// Rule 1: upper-case, fold, delete apostrophes/digits/combining marks, everything that is not
/// a letter, `.` or `,` becomes a space.
fn clean(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars().flat_map(char::to_uppercase) {
        match c {
            'A'..='Z' | '.' | ',' => out.push(c),
            // apostrophes and combining accents are deleted
            '\''
            | '`'
            | '\u{b4}'
            | '\u{2018}'
            | '\u{2019}'
            | '\u{2bc}'
            | '\u{2bb}'
            | '\u{2032}'
            | '\u{300}'..='\u{36f}' => {}
            c if c.is_numeric() => {}
            c if c.is_ascii() => out.push(' '),
            c => fold_into(c, &mut out),
        }
    }
    out
}

/// Pushes the ASCII folding of an upper-case non-ASCII character: the letter without its
/// accent, the character itself for other letters, a space for anything else.
fn fold_into(c: char, out: &mut String) {
    let folded = match c {
        'À'..='Å' | 'Ā' | 'Ă' | 'Ą' | 'Ạ' => 'A',
        'Æ' => {
            out.push_str("AE");
            return;
        }
        'Ç' | 'Ć' | 'Č' => 'C',
        'Ð' | 'Ď' | 'Đ' | 'Ḍ' => 'D',
        'È'..='Ë' | 'Ē' | 'Ė' | 'Ę' | 'Ě' | 'Ẹ' => 'E',
        'Ğ' => 'G',
        'Ḥ' => 'H',
        'Ì'..='Ï' | 'Ī' | 'Į' | 'İ' | 'Ị' => 'I',
        'Ł' => 'L',
        'Ñ' | 'Ń' | 'Ň' => 'N',
        'Ò'..='Ö' | 'Ø' | 'Ō' | 'Ő' | 'Ọ' => 'O',
        'Ŕ' | 'Ř' => 'R',
        'Ś' | 'Š' | 'Ş' | 'Ṣ' => 'S',
        'Ť' | 'Ṭ' => 'T',
        'Ù'..='Ü' | 'Ū' | 'Ů' | 'Ű' | 'Ụ' => 'U',
        'Ý' | 'Ÿ' => 'Y',
        'Ź' | 'Ż' | 'Ž' | 'Ẓ' => 'Z',
        c if c.is_alphabetic() => c,
        _ => ' ',
    };
    out.push(folded);
}

fn dotless(word: &str) -> String {
    word.chars().filter(|&c| c != '.').collect()
}

/// Upper-case with inner dots kept once and outer dots trimmed: `S..PD.` -> `S.PD`.
fn canon_written(word: &str) -> String {
    word.split('.')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(".")
}

/// A word after a comma that reads as a degree: known degree or post-comma title, or a dotted
/// abbreviation of at least two parts of 1-4 letters (`S.KOM.I`, `A.MD.KEB`).
fn degree_like(word: &str) -> bool {
    let d = dotless(word);
    if d.is_empty() {
        return false;
    }
    if contains(DEGREES, &d) || contains(POST_COMMA_TITLES, &d) {
        return true;
    }
    let mut parts = 0;
    for part in word.split('.').filter(|p| !p.is_empty()) {
        let len = part.chars().count();
        if len > 4 || !part.chars().all(char::is_alphabetic) {
            return false;
        }
        parts += 1;
    }
    parts >= 2
}

/// Degrees after the first comma, or `None` when the tail does not look like degrees.
fn degree_tail(tail: &str) -> Option<Vec<String>> {
    let mut found = Vec::new();
    for segment in tail.split(',') {
        let words: Vec<&str> = segment
            .split_whitespace()
            .filter(|w| w.chars().any(|c| c != '.'))
            .collect();
        if words.is_empty() {
            continue;
        }
        if words.iter().all(|w| degree_like(w)) {
            found.extend(words.iter().map(|w| canon_written(w)));
            continue;
        }
        let joined = words.concat();
        if degree_like(&joined) {
            found.push(canon_written(&joined));
            continue;
        }
        return None;
    }
    Some(found)
}

/// Splits the name part into tokens. A dotted word whose dotless form is a known title or
/// degree (`K.H.`, `S.PD`) stays whole; other dotted words split at the dots (`H.ABDUL`).
fn tokenize(head: &str) -> Vec<Tok> {
    let mut toks = Vec::new();
    for word in head.split_whitespace() {
        if !word.contains('.') {
            toks.push(Tok {
                text: word.to_owned(),
                written: word.to_owned(),
                dotted: false,
            });
            continue;
        }
        let d = dotless(word);
        if d.is_empty() {
            continue;
        }
        let known = [
            LEADING_TITLES,
            POST_COMMA_TITLES,
            DEGREES,
            TRAILING_HONORIFICS,
        ]
        .iter()
        .any(|list| contains(list, &d));
        if known {
            toks.push(Tok {
                text: d,
                written: canon_written(word),
                dotted: true,
            });
            continue;
        }
        let pieces: Vec<&str> = word.split('.').collect();
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.into_iter().enumerate() {
            if !piece.is_empty() {
                toks.push(Tok {
                    text: piece.to_owned(),
                    written: piece.to_owned(),
                    dotted: i < last,
                });
            }
        }
    }
    toks
}

fn is_trailing_degree(tok: &Tok) -> bool {
    let degree = contains(DEGREES, &tok.text)
        && (tok.written.contains('.') || contains(BARE_DEGREES, &tok.text));
    degree || contains(TRAILING_HONORIFICS, &tok.text)
}

/// The title at the start of `toks` and how many tokens it takes, if any (rule 2).
fn leading_title(toks: &[Tok]) -> Option<(String, usize)> {
    let first = toks.first()?;
    let followers = toks.len().saturating_sub(1);
    if followers == 0 {
        return None;
    }
    if first.text == "R" {
        return (first.dotted || followers >= 2).then(|| ("R".to_owned(), 1));
    }
    if first.text == "K"
        && first.dotted
        && followers >= 2
        && toks.get(1).is_some_and(|t| t.text == "H")
    {
        return Some(("KH".to_owned(), 2));
    }
    if contains(LEADING_TITLES, &first.text) {
        return Some((first.text.clone(), 1));
    }
    let (respelled, changed, _) = respell(&first.text);
    (changed && contains(LEADING_TITLES, &respelled)).then_some((respelled, 1))
}

/// Removes leading titles: returns them and the index of the first remaining token.
fn strip_titles(toks: &[Tok]) -> (Vec<String>, usize) {
    let mut titles = Vec::new();
    let mut start = 0;
    while let Some((title, len)) = leading_title(toks.get(start..).unwrap_or_default()) {
        titles.push(title);
        start += len;
    }
    (titles, start)
}

/// Name parts of tokens: compounds kept whole for title matching split at their dots again.
fn expand(toks: &[Tok]) -> Vec<&str> {
    toks.iter()
        .flat_map(|t| t.written.split('.'))
        .filter(|p| !p.is_empty())
        .collect()
}

/// Rules 5-6 on a list of parts; a first `M` with more parts following is `MUHAMMAD`.
fn canonical_words(parts: &[&str], old_spelling: &mut bool) -> Vec<String> {
    let many = parts.len() > 1;
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            if i == 0 && many && *part == "M" {
                return "MUHAMMAD".to_owned();
            }
            let (word, changed) = canonical_word(part);
            *old_spelling |= changed;
            word
        })
        .collect()
}

/// Variant table on the token as written, else spelling map then variant table. The flag
/// says whether the token shows pre-1972 spelling: a sign other than `CH` was mapped (a
/// `CH`->`KH` alone changes the word but not the flag).
fn canonical_word(token: &str) -> (String, bool) {
    if let Some(v) = variant(token) {
        return (v.to_owned(), false);
    }
    let (respelled, _, old_sign) = respell(token);
    match variant(&respelled) {
        Some(v) => (v.to_owned(), old_sign),
        None => (respelled, old_sign),
    }
}

fn variant(token: &str) -> Option<&'static str> {
    VARIANTS
        .iter()
        .find(|(from, _)| *from == token)
        .map(|(_, to)| *to)
}

/// One unit of the left-to-right spelling scan.
#[derive(Clone, Copy)]
enum Unit {
    Oe,
    Dj,
    Tj,
    Nj,
    Sj,
    Ch,
    J,
    Other(char),
}

/// Rule 5: maps pre-1972 spelling in one upper-case token. Returns the mapped token, whether
/// it changed, and whether it has an old sign other than `CH` (`OE`, `DJ`, `TJ`, `SJ`, or `NJ`
/// at the start); such a sign always changes the token, while `CH` alone changes it without
/// being evidence of old spelling (`MICHAEL`, `RICHARD`).
fn respell(token: &str) -> (String, bool, bool) {
    let chars: Vec<char> = token.chars().collect();
    let mut units = Vec::with_capacity(chars.len());
    let mut old_sign = false;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let next = chars.get(i + 1).copied();
        let (unit, len) = match (c, next) {
            ('O', Some('E')) => (Unit::Oe, 2),
            ('D', Some('J')) => (Unit::Dj, 2),
            ('T', Some('J')) if chars.get(i + 2) == Some(&'H') => (Unit::Tj, 3),
            ('T', Some('J')) => (Unit::Tj, 2),
            ('N', Some('J')) => (Unit::Nj, 2),
            ('S', Some('J')) => (Unit::Sj, 2),
            ('C', Some('H')) => (Unit::Ch, 2),
            ('J', _) => (Unit::J, 1),
            (c, _) => (Unit::Other(c), 1),
        };
        match unit {
            Unit::Oe | Unit::Dj | Unit::Tj | Unit::Sj => old_sign = true,
            Unit::Nj if i == 0 => old_sign = true,
            _ => {}
        }
        units.push(unit);
        i += len;
    }
    let mut out = String::with_capacity(token.len() + 2);
    for unit in units {
        match unit {
            Unit::Oe => out.push('U'),
            Unit::Tj => out.push('C'),
            Unit::Nj if old_sign => out.push_str("NY"),
            Unit::Nj => out.push_str("NJ"),
            Unit::Sj => out.push_str("SY"),
            Unit::Ch => out.push_str("KH"),
            Unit::J if old_sign => out.push('Y'),
            // a J made from DJ always stays J
            Unit::Dj | Unit::J => out.push('J'),
            Unit::Other(c) => out.push(c),
        }
    }
    let changed = out != token;
    (out, changed, old_sign)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> String {
        normalize_name(raw).name
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    // ---- rule 1: cleaning ----

    #[test]
    fn upper_cases_and_collapses_whitespace() {
        assert_eq!(key("  siti   aminah "), "SITI AMINAH");
        assert_eq!(key("Sri\tWahyuni\nNingsih"), "SRI WAHYUNI NINGSIH");
        assert_eq!(key("dewi\u{a0}lestari"), "DEWI LESTARI");
    }

    #[test]
    fn folds_accents() {
        assert_eq!(key("René Suryadi"), "RENE SURYADI");
        assert_eq!(key("Zaïnal Abidin"), "ZAINAL ABIDIN");
        assert_eq!(key("ÜMI KALSUM"), "UMI KALSUM");
        assert_eq!(key("Ṣāliḥ"), "SALIH");
        // decomposed form: E + combining acute
        assert_eq!(key("Rene\u{301} Suryadi"), "RENE SURYADI");
    }

    #[test]
    fn removes_apostrophes_inside_words() {
        assert_eq!(key("NU'MAN"), "NUMAN");
        assert_eq!(key("Ma`ruf Amin"), "MARUF AMIN");
        assert_eq!(key("Ma\u{2019}ruf Amin"), "MARUF AMIN");
        assert_eq!(key("Siti Ni'mah"), "SITI NIMAH");
    }

    #[test]
    fn separators_digits_and_punctuation() {
        assert_eq!(key("SITI-AMINAH"), "SITI AMINAH");
        assert_eq!(key("BUDI/BUDIMAN"), "BUDI BUDIMAN");
        assert_eq!(key("AGUS_SALIM"), "AGUS SALIM");
        assert_eq!(key("SITI2 AMINAH 1"), "SITI AMINAH");
        assert_eq!(key("(DEWI) * SARTIKA;"), "DEWI SARTIKA");
        assert_eq!(key("\"Eko\" Prasetyo"), "EKO PRASETYO");
    }

    #[test]
    fn empty_inputs_give_default() {
        for raw in [
            "", "   ", "-", " - ", ".", "--", "123", "'", ",", " , ", "\t",
        ] {
            assert_eq!(normalize_name(raw), NormalizedName::default(), "{raw:?}");
        }
    }

    // ---- rule 2: leading titles ----

    #[test]
    fn pilgrimage_and_courtesy_titles() {
        let n = normalize_name("Hj. Siti Aminah");
        assert_eq!(n.name, "SITI AMINAH");
        assert_eq!(n.titles, strings(&["HJ"]));
        let n = normalize_name("H. Abdul Rahman");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("ABDUL RAHMAN", strings(&["H"]))
        );
        let n = normalize_name("H ABDUL RAHMAN");
        assert_eq!(n.titles, strings(&["H"]));
        assert!(n.initials.is_empty());
        let n = normalize_name("Ny. Sri Wahyuni");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("SRI WAHYUNI", strings(&["NY"]))
        );
        let n = normalize_name("Bpk. Sutrisno");
        assert_eq!((n.name.as_str(), n.titles), ("SUTRISNO", strings(&["BPK"])));
        let n = normalize_name("Ibu Sri Mulyani");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("SRI MULYANI", strings(&["IBU"]))
        );
        let n = normalize_name("Sdri. Wulan");
        assert_eq!((n.name.as_str(), n.titles), ("WULAN", strings(&["SDRI"])));
        let n = normalize_name("HAJJAH FATIMAH");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("FATIMAH", strings(&["HAJJAH"]))
        );
    }

    #[test]
    fn several_titles_in_a_row() {
        let n = normalize_name("Prof. Dr. Ir. H. Bambang Sudibyo");
        assert_eq!(n.name, "BAMBANG SUDIBYO");
        assert_eq!(n.titles, strings(&["PROF", "DR", "IR", "H"]));
        let n = normalize_name("Alm. H. Sukirman");
        assert_eq!(n.name, "SUKIRMAN");
        assert_eq!(n.titles, strings(&["ALM", "H"]));
        let n = normalize_name("DRA. HJ. ENDANG");
        assert_eq!(n.titles, strings(&["DRA", "HJ"]));
    }

    #[test]
    fn kyai_haji_in_its_forms() {
        for raw in [
            "K.H. Abdurrahman Wahid",
            "KH Abdurrahman Wahid",
            "K. H. Abdurrahman Wahid",
        ] {
            let n = normalize_name(raw);
            assert_eq!(n.name, "ABDURRAHMAN WAHID", "{raw}");
            assert_eq!(n.titles, strings(&["KH"]), "{raw}");
        }
        let n = normalize_name("Ust. Abdul Somad");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("ABDUL SOMAD", strings(&["UST"]))
        );
    }

    #[test]
    fn raden_r_needs_a_dot_or_two_followers() {
        let n = normalize_name("R. Soeharto");
        assert_eq!(n.name, "SUHARTO");
        assert_eq!(n.titles, strings(&["R"]));
        assert!(n.initials.is_empty());
        assert!(n.old_spelling);
        let n = normalize_name("R.Soeharto");
        assert_eq!((n.name.as_str(), n.titles), ("SUHARTO", strings(&["R"])));
        let n = normalize_name("R Achmad Soebardjo");
        assert_eq!(n.name, "AHMAD SUBARJO");
        assert_eq!(n.titles, strings(&["R"]));
        let n = normalize_name("R Soeharto");
        assert_eq!(n.name, "R SUHARTO");
        assert!(n.titles.is_empty());
        assert_eq!(n.initials, strings(&["R"]));
        let n = normalize_name("R.A. Kartini");
        assert_eq!((n.name.as_str(), n.titles), ("KARTINI", strings(&["RA"])));
        let n = normalize_name("Raden Mas Said");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("MAS SAID", strings(&["RADEN"]))
        );
    }

    #[test]
    fn regional_titles() {
        let n = normalize_name("Tb. Chasan Sochib");
        assert_eq!(n.name, "KHASAN SOKHIB");
        assert_eq!(n.titles, strings(&["TB"]));
        // CH alone is no evidence of old spelling
        assert!(!n.old_spelling);
        let n = normalize_name("Ratu Atut Chosiyah");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("ATUT KHOSIYAH", strings(&["RATU"]))
        );
        let n = normalize_name("Teuku Umar");
        assert_eq!((n.name.as_str(), n.titles), ("UMAR", strings(&["TEUKU"])));
        let n = normalize_name("Tgk. Chik di Tiro");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("KHIK DI TIRO", strings(&["TGK"]))
        );
        let n = normalize_name("Cut Nyak Dhien");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("NYAK DHIEN", strings(&["CUT"]))
        );
    }

    #[test]
    fn andi_and_daeng_stay_in_the_name() {
        // ANDI is one of the most common given names: never stripped as a title.
        for (raw, want) in [
            ("Andi Mallarangeng", "ANDI MALLARANGENG"),
            ("ANDI MALLARANGENG", "ANDI MALLARANGENG"),
            ("Daeng Mattola", "DAENG MATTOLA"),
            ("Andi Daeng Siti", "ANDI DAENG SITI"),
            ("Andi. Mallarangeng", "ANDI MALLARANGENG"),
        ] {
            let n = normalize_name(raw);
            assert_eq!(n.name, want, "{raw}");
            assert!(n.titles.is_empty(), "{raw}: {:?}", n.titles);
            assert!(n.initials.is_empty(), "{raw}");
        }
        // other titles before ANDI are still removed
        let n = normalize_name("H. Andi Mallarangeng");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("ANDI MALLARANGENG", strings(&["H"]))
        );
    }

    #[test]
    fn titles_in_old_spelling_are_recognised() {
        let n = normalize_name("Tjoet Njak Dhien");
        assert_eq!(n.name, "NYAK DHIEN");
        assert_eq!(n.titles, strings(&["CUT"]));
        let n = normalize_name("Hadji Agus Salim");
        assert_eq!(n.name, "AGUS SALIM");
        assert_eq!(n.titles, strings(&["HAJI"]));
    }

    #[test]
    fn a_single_token_is_never_a_title() {
        for (raw, want) in [
            ("Andi", "ANDI"),
            ("HAJI", "HAJI"),
            ("Ratu", "RATU"),
            ("Cut", "CUT"),
        ] {
            let n = normalize_name(raw);
            assert_eq!(n.name, want);
            assert!(n.titles.is_empty(), "{raw}");
        }
        let n = normalize_name("H.");
        assert_eq!(n.name, "H");
        assert!(n.titles.is_empty());
        // the last name token survives a run of titles
        let n = normalize_name("H. Andi");
        assert_eq!((n.name.as_str(), n.titles), ("ANDI", strings(&["H"])));
    }

    #[test]
    fn titles_only_at_the_start() {
        let n = normalize_name("SITI H ALI");
        assert_eq!(n.name, "SITI H ALI");
        assert!(n.titles.is_empty());
        assert_eq!(n.initials, strings(&["H"]));
        assert_eq!(key("AGUS ANDI"), "AGUS ANDI");
    }

    #[test]
    fn dotted_words_split_at_dots() {
        let n = normalize_name("H.M. Yusuf");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("MUHAMMAD YUSUF", strings(&["H"]))
        );
        let n = normalize_name("H.ABDUL MANAF");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("ABDUL MANAF", strings(&["H"]))
        );
        let n = normalize_name("M.H. Thamrin");
        assert_eq!(n.name, "MUHAMMAD H THAMRIN");
        assert_eq!(n.initials, strings(&["H"]));
        assert!(n.titles.is_empty());
    }

    // ---- rule 3: degrees ----

    #[test]
    fn degrees_after_a_comma() {
        let n = normalize_name("Hj. Siti Aminah, S.Pd");
        assert_eq!(n.name, "SITI AMINAH");
        assert_eq!(n.titles, strings(&["HJ", "S.PD"]));
        let n = normalize_name("BUDI, S.E., M.M");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("BUDI", strings(&["S.E", "M.M"]))
        );
        let n = normalize_name("Budi Santoso, SE, MM");
        assert_eq!(n.titles, strings(&["SE", "MM"]));
        let n = normalize_name("BUDI SANTOSO, ST");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("BUDI SANTOSO", strings(&["ST"]))
        );
        let n = normalize_name("Siti Aminah, S. Pd");
        assert_eq!(n.titles, strings(&["S.PD"]));
        let n = normalize_name("Rina Wati, Amd.Keb");
        assert_eq!(n.titles, strings(&["AMD.KEB"]));
        let n = normalize_name("Nur Hasanah,A.Md");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("NUR HASANAH", strings(&["A.MD"]))
        );
        let n = normalize_name("Ahmad Fauzi, S.Kom.I");
        assert_eq!(n.titles, strings(&["S.KOM.I"]));
        let n = normalize_name("ABDULLAH, H.");
        assert_eq!((n.name.as_str(), n.titles), ("ABDULLAH", strings(&["H"])));
        let n = normalize_name("dr. Siti Rahma, Sp.OG");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("SITI RAHMA", strings(&["DR", "SP.OG"]))
        );
    }

    #[test]
    fn comma_without_degrees_is_a_separator() {
        let n = normalize_name("SITI, AMINAH");
        assert_eq!(n.name, "SITI AMINAH");
        assert!(n.titles.is_empty());
        assert_eq!(key("Muhammad, Yusuf"), "MUHAMMAD YUSUF");
        assert_eq!(key("SITI AMINAH,"), "SITI AMINAH");
    }

    #[test]
    fn trailing_degrees_without_comma() {
        let n = normalize_name("BUDI SANTOSO S.T.");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("BUDI SANTOSO", strings(&["S.T"]))
        );
        let n = normalize_name("SITI AMINAH SPD");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("SITI AMINAH", strings(&["SPD"]))
        );
        let n = normalize_name("Budi S.Kom M.Kom");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("BUDI", strings(&["S.KOM", "M.KOM"]))
        );
        let n = normalize_name("SITI AMINAH S.Pd.I");
        assert_eq!(n.titles, strings(&["S.PD.I"]));
        let n = normalize_name("SUPARMAN (ALM)");
        assert_eq!((n.name.as_str(), n.titles), ("SUPARMAN", strings(&["ALM"])));
        // bare forms that may be name parts stay
        assert_eq!(key("BUDI ST"), "BUDI ST");
        assert_eq!(key("AGUS MA"), "AGUS MA");
        // at least one name token is kept
        let n = normalize_name("SE");
        assert_eq!(n.name, "SE");
        assert!(n.titles.is_empty());
        let n = normalize_name("Andi SE");
        assert_eq!((n.name.as_str(), n.titles), ("ANDI", strings(&["SE"])));
    }

    #[test]
    fn title_order_is_leading_then_trailing_then_comma() {
        let n = normalize_name("DRS. H. MOCH. YUSUF, M.M");
        assert_eq!(n.name, "MUHAMMAD YUSUF");
        assert_eq!(n.titles, strings(&["DRS", "H", "M.M"]));
        let n = normalize_name("Dra. Budi S.Pd, M.Pd");
        assert_eq!(n.titles, strings(&["DRA", "S.PD", "M.PD"]));
    }

    // ---- rule 4: patronymic ----

    #[test]
    fn patronymic_split() {
        let n = normalize_name("Ahmad bin Abdullah");
        assert_eq!(n.name, "AHMAD");
        assert_eq!(n.patronymic.as_deref(), Some("ABDULLAH"));
        let n = normalize_name("ALI BIN ABU BAKAR");
        assert_eq!(
            (n.name.as_str(), n.patronymic.as_deref()),
            ("ALI", Some("ABU BAKAR"))
        );
        let n = normalize_name("SITI BINTI ABD. MANAF");
        assert_eq!(n.name, "SITI");
        assert_eq!(n.patronymic.as_deref(), Some("ABDUL MANAF"));
        let n = normalize_name("Siti bt. Ismail");
        assert_eq!(
            (n.name.as_str(), n.patronymic.as_deref()),
            ("SITI", Some("ISMAIL"))
        );
        let n = normalize_name("NURUL BINTI. HASAN");
        assert_eq!(n.patronymic.as_deref(), Some("HASAN"));
    }

    #[test]
    fn patronymic_is_normalised_too() {
        let n = normalize_name("Ali bin H. Abu Bakar");
        assert_eq!(n.patronymic.as_deref(), Some("ABU BAKAR"));
        assert!(
            n.titles.is_empty(),
            "the father's title is not the person's"
        );
        let n = normalize_name("ALI BIN M. YUSUF");
        assert_eq!(n.patronymic.as_deref(), Some("MUHAMMAD YUSUF"));
        let n = normalize_name("ALI BIN SOELAIMAN");
        assert_eq!(n.patronymic.as_deref(), Some("SULAIMAN"));
        assert!(n.old_spelling);
        let n = normalize_name("H. Ali bin Abu Bakar, S.Ag");
        assert_eq!(n.name, "ALI");
        assert_eq!(n.titles, strings(&["H", "S.AG"]));
        assert_eq!(n.patronymic.as_deref(), Some("ABU BAKAR"));
        // only the first marker splits
        let n = normalize_name("ALI BIN ABU BIN SALEH");
        assert_eq!(n.patronymic.as_deref(), Some("ABU BIN SALEH"));
    }

    #[test]
    fn patronymic_edge_cases() {
        let n = normalize_name("BIN ALI");
        assert_eq!(n.name, "BIN ALI");
        assert_eq!(n.patronymic, None);
        let n = normalize_name("ALI BIN");
        assert_eq!(n.name, "ALI");
        assert_eq!(n.patronymic, None);
        assert_eq!(key("ROBIN HUTAGALUNG"), "ROBIN HUTAGALUNG");
    }

    // ---- rule 5: spelling ----

    #[test]
    fn old_spelling_examples() {
        for (raw, want) in [
            ("SOEMIJATI", "SUMIYATI"),
            ("OETJOEP", "UCUP"),
            ("DJOJO", "JOYO"),
            ("SOEDJONO", "SUJONO"),
            ("TJIPTO", "CIPTO"),
            ("SJARIF", "SYARIF"),
            ("NJOMAN", "NYOMAN"),
            ("SOENJOTO", "SUNYOTO"),
            ("PANDJI", "PANJI"),
            ("SANDJAJA", "SANJAYA"),
            ("TJHIN", "CIN"),
            ("Oemar Sjahid", "UMAR SYAHID"),
            // CH with another old sign in the token or elsewhere in the name
            ("MOECHTAR", "MUKHTAR"),
            ("SOETJIPTO CHAIRUL", "SUCIPTO KHAIRUL"),
            ("CHAIRUL BIN SOEMARDJO", "KHAIRUL"),
        ] {
            let n = normalize_name(raw);
            assert_eq!(n.name, want, "{raw}");
            assert!(n.old_spelling, "{raw}");
        }
    }

    #[test]
    fn ch_alone_maps_but_is_not_old_spelling() {
        for (raw, want) in [
            ("MICHAEL", "MIKHAEL"),
            ("RICHARD", "RIKHARD"),
            ("CHANDRA", "KHANDRA"),
            ("CHAIRUL", "KHAIRUL"),
            ("Richard Chandra", "RIKHARD KHANDRA"),
            ("MICHAEL BIN RICHARD", "MIKHAEL"),
        ] {
            let n = normalize_name(raw);
            assert_eq!(n.name, want, "{raw}");
            assert!(!n.old_spelling, "{raw}");
        }
        // the key is the same on both spellings
        assert_eq!(key("Chandra"), key("KHANDRA"));
    }

    #[test]
    fn modern_spelling_untouched() {
        for raw in [
            "JOKO",
            "JAJANG",
            "NYOMAN",
            "SANJAYA",
            "PANJI ANJANI",
            "YUSUF",
            "CICI",
        ] {
            let n = normalize_name(raw);
            assert_eq!(n.name, raw, "{raw}");
            assert!(!n.old_spelling, "{raw}");
        }
    }

    #[test]
    fn j_to_y_is_per_token() {
        assert_eq!(key("SOEDJONO JAJA"), "SUJONO JAJA");
        assert_eq!(key("Achmad Soebardjo"), "AHMAD SUBARJO");
        assert_eq!(key("Soekarno"), "SUKARNO");
    }

    // ---- rule 6: variants ----

    #[test]
    fn muhammad_variants() {
        for raw in [
            "MUHAMMAD",
            "MUHAMAD",
            "MOHAMAD",
            "MOHAMMAD",
            "MOCHAMMAD",
            "MOCHAMAD",
            "MOCH",
            "MOCH.",
            "MOH",
            "MUH",
            "MHD",
            "MUHD",
            "MOHD",
            "MUCHAMMAD",
            "MUCHAMAD",
            "Moehammad",
            "M.",
        ] {
            let n = normalize_name(&format!("{raw} YUSUF"));
            assert_eq!(n.name, "MUHAMMAD YUSUF", "{raw}");
            assert!(n.initials.is_empty(), "{raw}");
        }
        assert!(!normalize_name("MOCHAMMAD YUSUF").old_spelling);
        assert_eq!(key("M. Yusuf"), "MUHAMMAD YUSUF");
    }

    #[test]
    fn m_only_first_and_followed() {
        let n = normalize_name("M");
        assert_eq!(n.name, "M");
        assert_eq!(n.initials, strings(&["M"]));
        let n = normalize_name("YUSUF M.");
        assert_eq!(n.name, "YUSUF M");
        assert_eq!(n.initials, strings(&["M"]));
    }

    #[test]
    fn other_variants() {
        assert_eq!(key("ABD. RAHMAN"), "ABDUL RAHMAN");
        assert_eq!(key("ABDURRAHMAN"), "ABDURRAHMAN");
        for raw in ["ACHMAD", "AKHMAD", "AHMAT", "AHMED", "AHMAD"] {
            assert_eq!(key(&format!("{raw} DAHLAN")), "AHMAD DAHLAN", "{raw}");
        }
        assert_eq!(key("SITTI NURBAYA"), "SITI NURBAYA");
        assert_eq!(key("NOER HASANAH"), "NUR HASANAH");
    }

    // ---- rule 7: initials ----

    #[test]
    fn initials_are_kept_and_listed() {
        let n = normalize_name("S. AMINAH");
        assert_eq!(n.name, "S AMINAH");
        assert_eq!(n.initials, strings(&["S"]));
        let n = normalize_name("Siti A.");
        assert_eq!((n.name.as_str(), n.initials), ("SITI A", strings(&["A"])));
        let n = normalize_name("A.B. Santoso");
        assert_eq!(
            (n.name.as_str(), n.initials),
            ("A B SANTOSO", strings(&["A", "B"]))
        );
    }

    // ---- whole pipeline ----

    #[test]
    fn full_examples() {
        let n = normalize_name("Hj. Soemijati binti H. Abd. Rachman, S.Pd.");
        assert_eq!(
            n,
            NormalizedName {
                name: "SUMIYATI".into(),
                titles: strings(&["HJ", "S.PD"]),
                patronymic: Some("ABDUL RAKHMAN".into()),
                initials: vec![],
                old_spelling: true,
            }
        );
        let n = normalize_name("  nyonya   ratna-sari dewi  ");
        assert_eq!(
            (n.name.as_str(), n.titles),
            ("RATNA SARI DEWI", strings(&["NYONYA"]))
        );
    }

    #[test]
    fn idempotent_on_own_output() {
        let inputs = [
            "  siti   aminah ",
            "Hj. Siti Aminah, S.Pd",
            "DRS. H. MOCH. YUSUF, M.M",
            "M. Yusuf",
            "S. AMINAH",
            "Ahmad bin Abdullah",
            "SITI BINTI ABD. MANAF",
            "SOEMIJATI",
            "OETJOEP",
            "SANDJAJA",
            "PANDJI",
            "TJHIN",
            "Tb. Chasan Sochib",
            "Teuku Umar",
            "NU'MAN",
            "R. Soeharto",
            "R Soeharto",
            "Andi Mallarangeng",
            "Andi Daeng",
            "Andi",
            "Nyoman",
            "Achmad Soebardjo",
            "Tjoet Njak Dhien",
            "M.H. Thamrin",
            "H.M. Yusuf",
            "SE",
            "BUDI ST",
            "BIN ALI",
            "K. H. Ahmad Dahlan",
            "René Suryadi",
            "A.B. Santoso",
        ];
        for raw in inputs {
            let once = normalize_name(raw).name;
            let twice = normalize_name(&once);
            assert_eq!(twice.name, once, "{raw}");
            assert!(twice.titles.is_empty(), "{raw}: {:?}", twice.titles);
            assert!(!twice.old_spelling, "{raw}");
        }
    }

    #[test]
    fn name_tokens_split_a_key() {
        assert_eq!(
            name_tokens("MUHAMMAD YUSUF").collect::<Vec<_>>(),
            ["MUHAMMAD", "YUSUF"]
        );
        assert_eq!(name_tokens("").count(), 0);
        assert_eq!(name_tokens(" A  B ").collect::<Vec<_>>(), ["A", "B"]);
    }

    // ---- token_key ----

    #[test]
    fn token_key_exact_values() {
        assert_eq!(token_key("MUHAMMAD"), "MHMD");
        assert_eq!(token_key("SITI"), "ST");
        assert_eq!(token_key("SRI"), "SR");
        assert_eq!(token_key("AMINAH"), "AMN");
        assert_eq!(token_key("YUSUF"), "YSP");
        assert_eq!(token_key("SUMIYATI"), "SMT");
        assert_eq!(token_key(""), "");
        assert_eq!(token_key("A"), "A");
        assert_eq!(token_key("KUSUMAWARDHANI"), "KSMWRD");
    }

    #[test]
    fn token_key_groups_variants() {
        let groups: &[&[&str]] = &[
            &[
                "MUHAMMAD", "MUHAMAD", "MOHAMMAD", "MOCHAMAD", "MOCH", "muhammad",
            ],
            &["SUMIYATI", "SOEMIJATI", "SUMIATI"],
            &["YUSUF", "YUSUP", "JOESOEF"],
            &["AMINAH", "AMINA"],
            &["AHMAD", "ACHMAD", "AKHMAD"],
            &["KHASAN", "HASAN", "CHASAN"],
            &["SYARIF", "SJARIF", "SARIP"],
            &["FITRI", "PITRI"],
            &["ZAINAL", "JAINAL", "ZAENAL"],
            &["RAHMAT", "ROCHMAT", "ROHMAT"],
            &["ABDULLAH", "ABDULAH"],
            &["UCUP", "OETJOEP"],
            &["SHOLEH", "SOLEH", "SALEH"],
            &["DEWI", "DEWY"],
            &["RENÉ", "RENE"],
        ];
        for group in groups {
            let first = token_key(group[0]);
            for t in *group {
                assert_eq!(token_key(t), first, "{t} vs {}", group[0]);
            }
        }
    }

    #[test]
    fn token_key_keeps_distinct_names_apart() {
        for (a, b) in [
            ("SITI", "SRI"),
            ("WAWAN", "HERMAWAN"),
            ("AGUS", "BUDI"),
            ("DWI", "TRI"),
            ("OSMAN", "USMAN"),
            ("NUR", "NOVI"),
        ] {
            assert_ne!(token_key(a), token_key(b), "{a} vs {b}");
        }
    }

    #[test]
    fn token_key_is_short_and_stable() {
        for t in ["MUHAMMADIYAH", "KARTOSOEWIRJO", "PRAWIRANEGARA", "X"] {
            let k = token_key(t);
            assert!(k.chars().count() <= 6, "{t}: {k}");
            assert!(k.chars().all(|c| c.is_ascii_uppercase()), "{t}: {k}");
            assert_eq!(token_key(t), k, "deterministic");
        }
    }
}
