"""The codes ICAO Doc 9303 Part 3 allows in an MRZ's issuing-state and nationality fields.

ISO 3166-1 alpha-3 (taken from Debian's iso-codes), except Germany, whose MRZ code is ``D``
(Doc 9303 lists no ``DEU``), plus the codes ICAO adds for documents that no ISO country issues.
Bundled, so validation works offline and does not move when a library updates its list.
"""

_ISO_3166_TEXT = """
    ABW AFG AGO AIA ALA ALB AND ARE ARG ARM ASM ATA ATF ATG AUS AUT
    AZE BDI BEL BEN BES BFA BGD BGR BHR BHS BIH BLM BLR BLZ BMU BOL
    BRA BRB BRN BTN BVT BWA CAF CAN CCK CHE CHL CHN CIV CMR COD COG
    COK COL COM CPV CRI CUB CUW CXR CYM CYP CZE DJI DMA DNK DOM DZA
    ECU EGY ERI ESH ESP EST ETH FIN FJI FLK FRA FRO FSM GAB GBR GEO
    GGY GHA GIB GIN GLP GMB GNB GNQ GRC GRD GRL GTM GUF GUM GUY HKG
    HMD HND HRV HTI HUN IDN IMN IND IOT IRL IRN IRQ ISL ISR ITA JAM
    JEY JOR JPN KAZ KEN KGZ KHM KIR KNA KOR KWT LAO LBN LBR LBY LCA
    LIE LKA LSO LTU LUX LVA MAC MAF MAR MCO MDA MDG MDV MEX MHL MKD
    MLI MLT MMR MNE MNG MNP MOZ MRT MSR MTQ MUS MWI MYS MYT NAM NCL
    NER NFK NGA NIC NIU NLD NOR NPL NRU NZL OMN PAK PAN PCN PER PHL
    PLW PNG POL PRI PRK PRT PRY PSE PYF QAT REU ROU RUS RWA SAU SDN
    SEN SGP SGS SHN SJM SLB SLE SLV SMR SOM SPM SRB SSD STP SUR SVK
    SVN SWE SWZ SXM SYC SYR TCA TCD TGO THA TJK TKL TKM TLS TON TTO
    TUN TUR TUV TWN TZA UGA UKR UMI URY USA UZB VAT VCT VEN VGB VIR
    VNM VUT WLF WSM YEM ZAF ZMB ZWE
"""
ISO_3166_ALPHA3 = frozenset(_ISO_3166_TEXT.split())

ICAO_SPECIAL = {
    "D": "Germany",
    "GBD": "British Overseas Territories Citizen",
    "GBN": "British National (Overseas)",
    "GBO": "British Overseas Citizen",
    "GBP": "British Protected Person",
    "GBS": "British Subject",
    "UNO": "United Nations Organization (official)",
    "UNA": "United Nations specialized agency (official)",
    "UNK": "Resident of Kosovo (UNMIK travel document)",
    "RKS": "Kosovo",
    "EUE": "European Union",
    "XBA": "African Development Bank",
    "XIM": "African Export-Import Bank",
    "XCC": "Caribbean Community (CARICOM)",
    "XCE": "Council of Europe",
    "XCO": "Common Market for Eastern and Southern Africa",
    "XDC": "Southern African Development Community",
    "XEC": "Economic Community of West African States",
    "XES": "Organisation of Eastern Caribbean States",
    "XMP": "International Committee of the Red Cross",
    "XOM": "Sovereign Military Order of Malta",
    "XPO": "International Criminal Police Organization (Interpol)",
    "XXA": "Stateless person",
    "XXB": "Refugee (1951 Convention)",
    "XXC": "Refugee (other)",
    "XXX": "Unspecified nationality",
    "UTO": "Utopia (the fictional state of ICAO's specimen documents)",
}

ICAO_CODES = ISO_3166_ALPHA3 | ICAO_SPECIAL.keys()


def is_icao_code(code: str) -> bool:
    """True when ``code`` (fillers stripped, e.g. ``D`` from ``D<<``) may stand in an MRZ."""
    return code in ICAO_CODES
