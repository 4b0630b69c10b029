"""The built-in provider's knowledge, as data: free-mail domains, country-code top-level
domains, second-level public suffixes, and the job-title words of seniority and department.
Extend the tables, not the rules (`enrichment.rules`)."""

from __future__ import annotations

# Mailbox providers: their domain names no company (and a lead's company is not derived from it).
FREE_MAIL_DOMAINS = frozenset(
    """
    gmail.com googlemail.com yahoo.com yahoo.fr yahoo.co.uk yahoo.de yahoo.es yahoo.it ymail.com
    rocketmail.com hotmail.com hotmail.fr hotmail.co.uk hotmail.de hotmail.es hotmail.it outlook.com
    outlook.fr outlook.de live.com live.fr live.co.uk msn.com aol.com aol.fr icloud.com me.com mac.com
    gmx.com gmx.de gmx.fr gmx.net web.de t-online.de orange.fr wanadoo.fr free.fr laposte.net sfr.fr
    neuf.fr bbox.fr club-internet.fr numericable.fr proton.me protonmail.com pm.me yandex.com yandex.ru
    mail.ru zoho.com tutanota.com tuta.io fastmail.com hey.com mail.com libero.it virgilio.it tiscali.it
    seznam.cz wp.pl onet.pl o2.pl interia.pl qq.com 163.com 126.com sina.com naver.com daum.net
    skynet.be telenet.be bluewin.ch sunrise.ch hispeed.ch videotron.ca sympatico.ca shaw.ca
    comcast.net verizon.net att.net sbcglobal.net bellsouth.net cox.net charter.net btinternet.com
    sky.com virginmedia.com ntlworld.com talktalk.net
    """.split()
)

# Two-letter top-level domains used as generic names rather than for their country.
GENERIC_CCTLDS = frozenset("ai io co me tv fm am ly gg cc ws to sh ac so im nu tk ml ga cf gq la vc".split())
# A top-level domain that is not the country's ISO 3166-1 alpha-2 code.
CCTLD_TO_COUNTRY = {"uk": "GB"}

# Second-level suffixes under which companies register their names ("acme.co.uk").
SECOND_LEVEL_SUFFIXES = frozenset(
    """
    co.uk org.uk ac.uk gov.uk ltd.uk plc.uk me.uk com.au net.au org.au co.nz org.nz co.jp ne.jp or.jp
    co.kr com.br com.mx com.ar com.co com.cn com.hk com.sg com.my com.tr com.tw co.in co.za co.il
    com.pl com.es com.pt gouv.fr asso.fr com.fr co.at or.at
    """.split()
)

# Job titles: (value, words or phrases), in order: the first level whose word appears in the
# title wins, so "Vice President" is vp before c_level, "Directeur général" c_level before
# director, "Sales Manager" manager.
SENIORITY_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("intern", ("intern", "internship", "stagiaire", "alternant", "alternance", "apprenti", "trainee")),
    ("vp", ("vp", "svp", "evp", "vice president", "vice presidente")),
    (
        "c_level",
        (
            "ceo",
            "cto",
            "cfo",
            "coo",
            "cmo",
            "cio",
            "ciso",
            "cro",
            "cpo",
            "cdo",
            "chief",
            "pdg",
            "president",
            "presidente",
            "founder",
            "cofounder",
            "co founder",
            "fondateur",
            "fondatrice",
            "cofondateur",
            "co fondateur",
            "directeur general",
            "directrice generale",
            "dg",
            "managing director",
            "gerant",
            "gerante",
        ),
    ),  # fmt: skip
    ("director", ("director", "directeur", "directrice", "head of", "head")),
    (
        "manager",
        (
            "manager",
            "responsable",
            "chef",
            "lead",
            "leader",
            "supervisor",
            "superviseur",
            "superviseure",
            "team lead",
            "encadrant",
            "coordinator",
            "coordinateur",
            "coordinatrice",
        ),
    ),  # fmt: skip
    (
        "individual_contributor",
        (
            "engineer",
            "ingenieur",
            "ingenieure",
            "developer",
            "developpeur",
            "developpeuse",
            "analyst",
            "analyste",
            "consultant",
            "consultante",
            "specialist",
            "specialiste",
            "executive",
            "associate",
            "assistant",
            "assistante",
            "charge",
            "chargee",
            "technicien",
            "technicienne",
            "designer",
            "representative",
            "commercial",
            "commerciale",
            "comptable",
            "accountant",
            "officer",
            "agent",
            "architect",
            "architecte",
            "scientist",
            "administrator",
            "administrateur",
            "sdr",
            "bdr",
        ),
    ),  # fmt: skip
)

DEPARTMENT_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "sales",
        (
            "sales",
            "vente",
            "ventes",
            "commercial",
            "commerciale",
            "account executive",
            "account manager",
            "business development",
            "business developer",
            "bdr",
            "sdr",
            "key account",
            "grands comptes",
            "revenue",
            "cro",
        ),
    ),  # fmt: skip
    (
        "marketing",
        (
            "marketing",
            "growth",
            "brand",
            "marque",
            "communication",
            "communications",
            "seo",
            "sem",
            "content",
            "contenu",
            "demand generation",
            "demand gen",
            "cmo",
            "acquisition",
            "digital",
        ),
    ),  # fmt: skip
    ("customer_success", ("customer success", "support", "service client", "relation client", "customer care")),
    ("product", ("product", "produit", "cpo", "ux", "ui")),
    (
        "engineering",
        (
            "engineer",
            "engineering",
            "ingenieur",
            "ingenieure",
            "developer",
            "developpeur",
            "developpeuse",
            "software",
            "logiciel",
            "devops",
            "sre",
            "cto",
            "it",
            "si",
            "dsi",
            "informatique",
            "tech",
            "technical",
            "technique",
            "r d",
            "data",
            "security",
            "securite",
            "ciso",
            "cio",
            "architect",
            "architecte",
        ),
    ),  # fmt: skip
    (
        "finance",
        (
            "finance",
            "financial",
            "financier",
            "financiere",
            "cfo",
            "daf",
            "accounting",
            "accountant",
            "comptable",
            "comptabilite",
            "controller",
            "controleur",
            "controleuse",
            "tresorier",
            "treasury",
            "treasurer",
            "audit",
            "auditor",
        ),
    ),  # fmt: skip
    (
        "hr",
        (
            "hr",
            "human resources",
            "rh",
            "ressources humaines",
            "drh",
            "recruiter",
            "recruiting",
            "recruteur",
            "recrutement",
            "talent",
            "people",
        ),
    ),  # fmt: skip
    ("legal", ("legal", "juridique", "counsel", "lawyer", "avocat", "avocate", "juriste", "compliance")),
    (
        "operations",
        (
            "operations",
            "operation",
            "operationnel",
            "coo",
            "logistics",
            "logistique",
            "supply chain",
            "achats",
            "purchasing",
            "procurement",
        ),
    ),  # fmt: skip
    (
        "executive",
        (
            "ceo",
            "pdg",
            "president",
            "presidente",
            "founder",
            "cofounder",
            "co founder",
            "fondateur",
            "fondatrice",
            "directeur general",
            "directrice generale",
            "dg",
            "managing director",
            "gerant",
            "gerante",
        ),
    ),  # fmt: skip
)
