"""The portal benchmark's data set (`benchmarks/portal.py`): 1,000,000 synthetic leads spread over 20 brokers,
every 20th of them the measured broker's, built in one INSERT … SELECT by the admin role, then settled
(VACUUM ANALYZE) before anything is measured.
"""

from __future__ import annotations

import time

from benchmarks import common

TOTAL_LEADS = 1_000_000
BROKERS = 20
BROKER_EVERY = 20  # every 20th lead is the measured broker's: 50,000 of 1,000,000, spread over the table

FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Nancy",
    "Matthew",
    "Lisa",
    "Anthony",
    "Betty",
    "Mark",
    "Margaret",
    "Donald",
    "Sandra",
    "Steven",
    "Ashley",
    "Paul",
    "Dorothy",
    "Andrew",
    "Kimberly",
    "Joshua",
    "Emily",
    "Kenneth",
    "Donna",
    "Kevin",
    "Michelle",
    "Brian",
    "Carol",
    "George",
    "Amanda",
    "Edward",
    "Melissa",
    "Ronald",
    "Deborah",
    "Harold",
    "Martha",
    "Walter",
    "Gloria",
    "Eugene",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Gomez",
    "Phillips",
    "Evans",
    "Turner",
    "Diaz",
    "Parker",
    "Cruz",
    "Edwards",
    "Collins",
    "Reyes",
    "Stewart",
    "Morris",
    "Morales",
    "Murphy",
    "Cook",
    "Rogers",
    "Gutierrez",
    "Ortiz",
    "Morgan",
    "Cooper",
    "Peterson",
    "Bailey",
    "Reed",
    "Kelly",
    "Howard",
    "Ramos",
    "Kim",
    "Cox",
    "Ward",
    "Richardson",
    "Watson",
    "Brooks",
    "Chavez",
    "Wood",
    "James",
    "Bennett",
    "Gray",
    "Mendoza",
    "Ruiz",
    "Hughes",
    "Price",
    "Alvarez",
    "Castillo",
    "Sanders",
    "Patel",
    "Myers",
    "Long",
    "Ross",
    "Foster",
    "Keller",
    "Whitfield",
    "Ortega",
    "Nakamura",
    "Okafor",
    "Lindqvist",
    "Brennan",
    "Castellano",
    "Dubois",
]
STREETS = [
    "Main",
    "Oak",
    "Pine",
    "Maple",
    "Cedar",
    "Elm",
    "Sunset",
    "Lake",
    "Hill",
    "Park",
    "Washington",
    "Lincoln",
    "Jefferson",
    "Madison",
    "Willow",
    "Mission",
    "Harbor",
    "Canyon",
    "Valley",
    "Ridge",
]
CITIES = [
    "San Diego",
    "Los Angeles",
    "Sacramento",
    "Fresno",
    "Oakland",
    "San Jose",
    "Riverside",
    "Bakersfield",
    "Anaheim",
    "Santa Ana",
    "Stockton",
    "Irvine",
    "Chula Vista",
    "Fremont",
    "Modesto",
    "Oxnard",
]


def bench_brokers(count: int = BROKERS) -> list:
    """The benchmark's brokers `bench-broker00…`, made once (with their users) and listed by e-mail; the first is
    the one measured. Needs the service context."""
    from django.contrib.auth import get_user_model

    from security.models import Broker

    users = get_user_model()
    brokers = list(Broker.objects.order_by("email").filter(email__startswith="bench-broker"))
    for number in range(len(brokers), count):
        email = f"bench-broker{number:02d}@example.com"
        user, _ = users.objects.get_or_create(username=email, defaults={"email": email})
        Broker.objects.create(name=f"Bench Broker {number:02d}", email=email, user=user)
    return list(Broker.objects.order_by("email").filter(email__startswith="bench-broker"))


def build(cursor, broker_ids: list[str], total: int = TOTAL_LEADS) -> float:
    """`total` leads by SQL, and their portal search rows as one built `lead_search` partition, as a large upload
    adds them (leads migration 0026_lead_search): the row trigger is deferred for the insert."""
    started = time.perf_counter()
    cursor.execute("SELECT setseed(0.42)")
    cursor.execute("SELECT set_config('equity.lead_search_deferred', 'on', false)")
    cursor.execute(
        """
        INSERT INTO leads (first_name, last_name, email, phone, property_address, property_city, property_state,
                           property_zip, property_value, estimated_equity, property_type, age, owner_occupied,
                           assigned_broker_id, lead_score, campaign_status, email_verified, phone_verified,
                           consent, consented_at, consent_method, apn, mak, created_at)
        SELECT f, l,
               lower(f || '.' || l || g || '@example.com'),
               '+1' || (2002000000 + (random() * 7000000000)::bigint)::text,
               (100 + g %% 9899)::text || ' ' || s || ' St',
               c, 'CA', (90000 + (g %% 6000))::text,
               200000 + (random() * 1500000)::int, (random() * 900000)::int, 'Single Family',
               55 + (random() * 35)::int, random() < 0.85,
               CASE WHEN g %% %(every)s = 0 THEN %(measured)s::uuid
                    ELSE (%(others)s::uuid[])[1 + (g %% %(n_others)s)] END,
               (random() * 100)::int,
               (ARRAY['new','new','new','queued','queued','active','active','replied','paused','unsubscribed',
                      'bounced','do_not_contact','converted'])[1 + (random() * 12)::int]::campaign_status,
               random() < 0.7, random() < 0.6, cons, CASE WHEN cons THEN now() - interval '10 days' END,
               CASE WHEN cons THEN 'form' END,
               lpad((g / 1000)::text, 3, '0') || '-' || lpad((g %% 1000)::text, 3, '0')
                 || '-' || lpad((g %% 97)::text, 2, '0'),
               'MAK' || g, now() - (random() * interval '365 days')
          FROM (
            SELECT g,
                   (%(first)s::text[])[1 + (random() * (array_length(%(first)s::text[], 1) - 1))::int] AS f,
                   (%(last)s::text[])[1 + (random() * (array_length(%(last)s::text[], 1) - 1))::int] AS l,
                   (%(streets)s::text[])[1 + (random() * (array_length(%(streets)s::text[], 1) - 1))::int] AS s,
                   (%(cities)s::text[])[1 + (random() * (array_length(%(cities)s::text[], 1) - 1))::int] AS c,
                   random() < 0.4 AS cons
              FROM generate_series(1, %(total)s) AS g
          ) AS rows
        """,
        {
            "every": BROKER_EVERY,
            "measured": broker_ids[0],
            "others": broker_ids[1:],
            "n_others": len(broker_ids) - 1,
            "first": FIRST_NAMES,
            "last": LAST_NAMES,
            "streets": STREETS,
            "cities": CITIES,
            "total": total,
        },
    )
    cursor.execute("SELECT set_config('equity.lead_search_deferred', 'off', false)")
    cursor.execute(
        "SELECT lead_search_partition_add(array_agg(id), array_agg(assigned_broker_id),"
        " array_agg(lead_search_document(first_name, last_name, property_address, property_city, apn)))"
        " FROM leads l WHERE NOT EXISTS (SELECT 1 FROM lead_search s WHERE s.lead_id = l.id)"
    )
    cursor.execute("ANALYZE leads")
    cursor.execute("ANALYZE lead_search")
    return time.perf_counter() - started


def settle() -> None:
    """VACUUM ANALYZE `leads` outside any transaction, as autovacuum would soon after a bulk load: otherwise
    its scan of the freshly built table (and the trigram index's pending list) runs during the
    measurement on this 2-core machine (measured: p95 1.9 s instead of ~70 ms)."""
    with common.psycopg_admin() as conn:
        conn.execute("VACUUM ANALYZE leads")
        conn.execute("VACUUM ANALYZE lead_search")
