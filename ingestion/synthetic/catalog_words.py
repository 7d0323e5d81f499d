"""The words of the synthetic catalog: what each leaf of the category tree is called and how it is sold.

Per leaf: the noun a title uses, attributes a title or description picks from, selling points a
description strings together, and what a shopper might type when looking for such a thing without
knowing the shop's words (``intents``). The describe step (``describe.py``) writes titles and
descriptions from the first three; the search benchmark (``queries.py``) asks the intents and
attribute + leaf queries, whose right answers are the leaf's items. Intents are written as paraphrases
on purpose: they are what keyword search misses and search by meaning should find.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class LeafWords:
    noun: str  # as in a title: "Smartphone", "Headphones"
    attributes: tuple[str, ...]
    selling_points: tuple[str, ...]  # each follows the noun: "with ...", "for ...", "made ..."
    intents: tuple[str, ...]


def _w(noun: str, attributes: str, selling_points: str, intents: str) -> LeafWords:
    return LeafWords(
        noun, tuple(attributes.split("|")), tuple(selling_points.split("|")), tuple(intents.split("|"))
    )


WORDS: Final[dict[str, LeafWords]] = {
    # Electronics
    "Smartphones": _w(
        "Smartphone",
        "5G|dual-SIM|OLED|foldable|rugged",
        "with a triple camera for sharp photos|with all-day battery life|with a bright 6.5-inch display",
        "new mobile phone with a good camera|cell phone that lasts all day",
    ),
    "Phone Cases": _w(
        "Phone Case",
        "shockproof|slim|leather|clear|wallet",
        "that protects against drops|with raised edges around the camera|with a slot for cards",
        "protective cover for my mobile|stop my screen from cracking when I drop it",
    ),
    "Chargers": _w(
        "Charger",
        "fast|USB-C|wireless|dual-port|travel",
        "that refills a battery in under an hour|with a foldable plug|that powers two devices at once",
        "power adapter to top up my phone|plug to refill a flat battery",
    ),
    "Laptops": _w(
        "Laptop",
        "ultralight|14-inch|gaming|convertible|business",
        "with a fast processor for work and study|with a backlit keyboard|with 16 GB of memory",
        "portable computer for university|notebook pc for coding on the train",
    ),
    "Monitors": _w(
        "Monitor",
        "27-inch|4K|curved|IPS|144 Hz",
        "with thin bezels for a dual-screen desk|with an adjustable stand"
        "|with accurate colours for photo editing",
        "big external screen for my desk|second display for working from home",
    ),
    "Keyboards": _w(
        "Keyboard",
        "mechanical|wireless|compact|ergonomic|backlit",
        "with quiet keys for typing all day|with a numeric keypad|that pairs with three devices",
        "something to type on for my computer|clicky keys for writing code",
    ),
    "Mice": _w(
        "Mouse",
        "wireless|ergonomic|silent|gaming|vertical",
        "with a precise optical sensor|shaped to fit the hand|with programmable side buttons",
        "pointer device for my pc|click and scroll gadget for the computer",
    ),
    "Headphones": _w(
        "Headphones",
        "over-ear|noise-cancelling|Bluetooth|studio|foldable",
        "with soft cushions for long listening|that block out the noise on flights|with 30 hours of playback",
        "block out the engine noise on a plane|listen to music at home without disturbing anyone",
    ),
    "Speakers": _w(
        "Speaker",
        "portable|waterproof|smart|Bluetooth|bookshelf",
        "with deep bass for parties|that fills a room with sound|with a built-in microphone",
        "play music loudly at a party|sound system for the living room",
    ),
    "Earbuds": _w(
        "Earbuds",
        "wireless|sport|in-ear|sweat-resistant|noise-cancelling",
        "with a secure fit for running and workouts|with a pocket-size charging case|with touch controls",
        "wireless earbuds for running|tiny audio buds for the gym",
    ),
    # Home & Kitchen
    "Frying Pans": _w(
        "Frying Pan",
        "non-stick|cast-iron|stainless-steel|ceramic|28 cm",
        "that heats evenly on every hob|with a cool-touch handle|that is safe in the oven",
        "something to fry eggs in|skillet for searing steak",
    ),
    "Pots": _w(
        "Pot",
        "stock|enamel|stainless-steel|5-litre|induction",
        "with a glass lid|for soups, stews and pasta|with sturdy side handles",
        "large saucepan to cook soup|casserole dish for a slow stew",
    ),
    "Knives": _w(
        "Knife",
        "chef's|Japanese|serrated|forged|santoku",
        "with a razor-sharp steel blade|with a balanced handle|for slicing, dicing and chopping",
        "sharp blade to chop vegetables|cutting tool for the kitchen",
    ),
    "Coffee Machines": _w(
        "Coffee Machine",
        "espresso|bean-to-cup|capsule|filter|barista",
        "with a milk frother for cappuccino|that grinds beans fresh|with a 15-bar pump",
        "make a latte at home|brew a morning cup of joe",
    ),
    "Kettles": _w(
        "Kettle",
        "electric|cordless|glass|temperature-control|1.7-litre",
        "that boils water in minutes|with automatic shut-off|with a limescale filter",
        "something to boil water|heat water for tea",
    ),
    "Blenders": _w(
        "Blender",
        "high-speed|personal|glass-jar|immersion|1200 W",
        "for smoothies, soups and crushed ice|with stainless steel blades|with pulse control",
        "make smoothies in the morning|puree fruit and crush ice",
    ),
    "Desks": _w(
        "Desk",
        "standing|height-adjustable|solid oak|corner|compact",
        "with room for two monitors|with cable management|that rises at the touch of a button",
        "table to work from home|sit stand workstation",
    ),
    "Office Chairs": _w(
        "Office Chair",
        "ergonomic|mesh|swivel|executive|adjustable",
        "with lumbar support for long workdays|with padded armrests|that reclines and locks",
        "comfortable seat for working at a computer|something to sit on all day with back support",
    ),
    "Shelves": _w(
        "Shelf",
        "floating|wall-mounted|oak|industrial|5-tier",
        "for books and plants|with hidden brackets|that stores more in a small room",
        "storage for my books on the wall|bookcase for a small flat",
    ),
    # Fashion
    "Dresses": _w(
        "Dress",
        "summer|maxi|wrap|floral|cocktail",
        "in a light flowing fabric|with a flattering waist|for weddings and evenings out",
        "something elegant to wear to a wedding|outfit for a summer party",
    ),
    "Handbags": _w(
        "Handbag",
        "leather|tote|crossbody|quilted|mini",
        "with an adjustable strap|with room for a laptop and essentials|with a zip pocket inside",
        "purse to carry my things|bag for work and shopping",
    ),
    "Women's Shoes": _w(
        "Women's Shoes",
        "heeled|ballet|ankle-boot|leather|trainer",
        "with a cushioned insole|comfortable all day|with a non-slip sole",
        "ladies footwear for the office|comfortable heels for a night out",
    ),
    "Shirts": _w(
        "Shirt",
        "Oxford|linen|slim-fit|flannel|button-down",
        "in breathable cotton|that is easy to iron|for the office or the weekend",
        "something smart to wear to work|collared top for men",
    ),
    "Jeans": _w(
        "Jeans",
        "slim|straight-leg|stretch|raw|relaxed",
        "in durable denim|with five pockets|that keep their shape",
        "blue trousers for everyday wear|casual pants made of denim",
    ),
    "Men's Shoes": _w(
        "Men's Shoes",
        "leather|brogue|loafer|sneaker|chelsea",
        "with a cushioned footbed|with a hard-wearing rubber sole|that go with suits and jeans",
        "footwear for men for the office|smart lace-ups for a gentleman",
    ),
    "Watches": _w(
        "Watch",
        "automatic|chronograph|smart|diver's|minimalist",
        "with a sapphire crystal|water-resistant to 100 m|with a stainless steel strap",
        "something to tell the time on my wrist|wristwatch gift for him",
    ),
    "Sunglasses": _w(
        "Sunglasses",
        "polarised|aviator|round|sport|oversized",
        "with full UV400 protection|with lightweight frames|that cut glare on the water",
        "shades for the beach|eye protection from bright sun",
    ),
    "Belts": _w(
        "Belt",
        "leather|reversible|braided|canvas|western",
        "with a brushed metal buckle|cut to fit any waist|for jeans and chinos",
        "strap to hold up my trousers|waistband accessory for men",
    ),
    # Beauty
    "Moisturizers": _w(
        "Moisturizer",
        "hydrating|oil-free|night|SPF 15|rich",
        "with hyaluronic acid for dry skin|that absorbs quickly|for sensitive skin",
        "face cream for dry skin|lotion to keep my face soft",
    ),
    "Serums": _w(
        "Serum",
        "vitamin C|retinol|niacinamide|anti-ageing|brightening",
        "that evens skin tone|with a dropper for precise use|that smooths fine lines",
        "treatment to reduce wrinkles|fade dark spots on my face",
    ),
    "Sunscreen": _w(
        "Sunscreen",
        "SPF 50|mineral|water-resistant|tinted|kids'",
        "with broad-spectrum UVA and UVB protection|that leaves no white cast|for beach days",
        "stop sunburn at the beach|sun cream for children",
    ),
    "Lipstick": _w(
        "Lipstick",
        "matte|satin|long-lasting|nude|red",
        "with rich colour in one swipe|that keeps lips moisturised|that stays on for hours",
        "lip colour for a night out|makeup for the lips",
    ),
    "Mascara": _w(
        "Mascara",
        "volumising|lengthening|waterproof|curling|black",
        "for fuller lashes|with a precise brush|that does not smudge",
        "make my eyelashes look longer|eye makeup for lashes",
    ),
    "Foundation": _w(
        "Foundation",
        "liquid|matte|full-coverage|dewy|lightweight",
        "in 30 shades|that evens out skin tone|with a natural finish",
        "base makeup to cover blemishes|complexion product matching my skin tone",
    ),
    "Shampoo": _w(
        "Shampoo",
        "sulfate-free|anti-dandruff|volumising|herbal|repair",
        "for clean healthy hair|with argan oil|gentle enough for daily washing",
        "wash my hair|treatment for an itchy flaky scalp",
    ),
    "Conditioner": _w(
        "Conditioner",
        "moisturising|leave-in|detangling|keratin|colour-protect",
        "that softens dry hair|that tames frizz|with coconut oil",
        "make my hair soft after washing|detangle curly hair",
    ),
    "Hair Dryers": _w(
        "Hair Dryer",
        "ionic|travel|2200 W|diffuser|salon",
        "that dries hair fast without frizz|with three heat settings|with a cool shot button",
        "blow dry my hair quickly|hot air styler for the bathroom",
    ),
    # Sports & Outdoors
    "Yoga Mats": _w(
        "Yoga Mat",
        "non-slip|extra-thick|cork|travel|eco",
        "with a carrying strap|that cushions knees and joints|for yoga, pilates and stretching",
        "exercise mat for home workouts|something soft to do pilates on",
    ),
    "Dumbbells": _w(
        "Dumbbell",
        "adjustable|hex|neoprene|10 kg|chrome",
        "for strength training at home|with a knurled grip|sold as a pair",
        "hand weights to build muscle|free weights for a home gym",
    ),
    "Resistance Bands": _w(
        "Resistance Band",
        "latex|loop|fabric|heavy|five-level",
        "for stretching and physiotherapy|that fits in a bag|in five tension levels",
        "elastic straps for working out|rubber exercise loops for glutes",
    ),
    "Bikes": _w(
        "Bike",
        "road|mountain|electric|hybrid|folding",
        "with 21 gears|with hydraulic disc brakes|with a lightweight aluminium frame",
        "bicycle for commuting to work|two wheels for trail riding",
    ),
    "Bike Helmets": _w(
        "Bike Helmet",
        "MIPS|road|kids'|commuter|ventilated",
        "that protects your head on every ride|with an adjustable dial fit|with a rear light",
        "head protection for cycling|safety hat for riding a bicycle",
    ),
    "Bike Lights": _w(
        "Bike Light",
        "USB-rechargeable|LED|front|rear|800-lumen",
        "that keeps you visible at night|with flashing modes|that clips on the handlebar",
        "lamp for cycling in the dark|be seen on my bicycle at night",
    ),
    "Tents": _w(
        "Tent",
        "2-person|family|pop-up|waterproof|backpacking",
        "that pitches in minutes|with a porch for gear|for festivals and camping trips",
        "shelter for sleeping outdoors|camp shelter for four people",
    ),
    "Sleeping Bags": _w(
        "Sleeping Bag",
        "down|mummy|3-season|ultralight|double",
        "that keeps you warm to -5 °C|that packs small|with a two-way zip",
        "stay warm at night when camping|something cosy to sleep in outdoors",
    ),
    "Headlamps": _w(
        "Headlamp",
        "LED|rechargeable|waterproof|500-lumen|red-light",
        "that frees both hands|with an adjustable head strap|for night hikes and running",
        "torch I can wear on my head|hands-free light for camping",
    ),
    # Toys & Games
    "Brick Sets": _w(
        "Brick Set",
        "building|castle|space|city|starter",
        "with 500 interlocking pieces|with step-by-step instructions|for kids aged 6 and up",
        "construction toy for kids|stackable blocks to build a spaceship",
    ),
    "Model Kits": _w(
        "Model Kit",
        "plastic|scale|wooden|aircraft|racing-car",
        "with paints and glue included|at 1:72 scale|for patient hobby builders",
        "build a miniature airplane|hobby project to assemble and paint",
    ),
    "Marble Runs": _w(
        "Marble Run",
        "wooden|glow-in-the-dark|modular|150-piece|deluxe",
        "with tracks, funnels and spirals|that teaches cause and effect|with 50 glass marbles",
        "track toy where balls roll down|construction toy with rolling balls",
    ),
    "Strategy Games": _w(
        "Strategy Game",
        "board|trading|war|two-player|expert",
        "for game nights with friends|with 90-minute sessions|that rewards planning ahead",
        "tabletop game for adults that needs tactics|board game night with friends",
    ),
    "Party Games": _w(
        "Party Game",
        "card|trivia|drawing|word|family",
        "for 4 to 12 players|that gets everyone laughing|with quick rounds",
        "fun game for a big group|something to play at a birthday gathering",
    ),
    "Puzzles": _w(
        "Puzzle",
        "1000-piece|jigsaw|panoramic|wooden|3D",
        "with a landscape picture|with a poster for reference|for quiet evenings",
        "something to piece together on a rainy day|brain teaser with many pieces",
    ),
    "Scooters": _w(
        "Scooter",
        "kick|foldable|three-wheel|electric|stunt",
        "with light-up wheels|with an adjustable handlebar|for kids and teens",
        "ride-on toy for children to go to school|kick board with wheels",
    ),
    "Balls": _w(
        "Ball",
        "football|basketball|volleyball|soft|rubber",
        "for the park or the garden|tough enough for outdoor play|in official size",
        "something to kick around in the garden|play catch outside",
    ),
    "Water Toys": _w(
        "Water Toy",
        "inflatable|squirt|pool|bath|splash",
        "for hot days in the garden|that floats|for the beach and the pool",
        "fun in the swimming pool for kids|summer toy for splashing",
    ),
    # Books
    "Crime": _w(
        "Crime Novel",
        "gripping|Nordic|detective|psychological|bestselling",
        "about a detective on the trail of a killer|with a twist on the final page|set in a rain-soaked city",
        "murder mystery to read|whodunit thriller book",
    ),
    "Fantasy": _w(
        "Fantasy Novel",
        "epic|magical|dragon|young-adult|bestselling",
        "about a quest across enchanted kingdoms|with wizards and ancient prophecies|that opens a trilogy",
        "book with dragons and wizards|story about magic and quests",
    ),
    "Romance": _w(
        "Romance Novel",
        "heartwarming|historical|summer|bestselling|second-chance",
        "about two strangers who fall in love|with a happy ending|set in a seaside town",
        "love story to read on holiday|book about falling in love",
    ),
    "Cookbooks": _w(
        "Cookbook",
        "vegetarian|Italian|baking|quick|family",
        "with 100 easy recipes|with step-by-step photos|for weeknight dinners",
        "recipes for dinner|learn to cook at home",
    ),
    "Biographies": _w(
        "Biography",
        "illustrated|authorised|sports|political|musical",
        "telling the life story of a famous figure|with never-seen photographs|in their own words",
        "life story of a famous person|memoir about a celebrity",
    ),
    "Science": _w(
        "Science Book",
        "popular|physics|astronomy|biology|illustrated",
        "that explains the universe in plain words|about evolution and the human body|for curious minds",
        "book explaining black holes|learn how the universe works",
    ),
    "Picture Books": _w(
        "Picture Book",
        "illustrated|bedtime|rhyming|board|animal",
        "for reading aloud to toddlers|with colourful pictures on every page|about a brave little bear",
        "bedtime story for a toddler|book for a three-year-old",
    ),
    "Early Readers": _w(
        "Early Reader",
        "phonics|level-one|chapter|illustrated|first",
        "for children learning to read|with short sentences and big type|that builds confidence",
        "help my child learn to read|first books for a six-year-old",
    ),
    "Activity Books": _w(
        "Activity Book",
        "sticker|colouring|puzzle|dot-to-dot|travel",
        "with hours of drawing fun|with mazes and games|for car journeys",
        "keep kids busy on a long trip|colouring in for children",
    ),
    # Grocery
    "Coffee Beans": _w(
        "Coffee Beans",
        "arabica|espresso|dark-roast|single-origin|organic",
        "roasted in small batches|with notes of chocolate and caramel|in a 1 kg bag",
        "whole beans for my grinder|roasted coffee for espresso",
    ),
    "Tea": _w(
        "Tea",
        "green|Earl Grey|herbal|chai|loose-leaf",
        "in 50 biodegradable bags|for a calm afternoon cup|with bergamot and citrus",
        "a calming hot drink|leaves to brew a cuppa",
    ),
    "Juice": _w(
        "Juice",
        "orange|apple|cold-pressed|not-from-concentrate|multivitamin",
        "squeezed from fresh fruit|with no added sugar|in a 1-litre carton",
        "fruit drink for breakfast|something fresh to drink with vitamins",
    ),
    "Pasta": _w(
        "Pasta",
        "durum-wheat|spaghetti|penne|wholegrain|fresh",
        "that cooks in 9 minutes|made in Italy|in a 500 g pack",
        "make a quick italian dinner|noodles for bolognese",
    ),
    "Olive Oil": _w(
        "Olive Oil",
        "extra-virgin|cold-pressed|Greek|organic|Spanish",
        "for dressings and cooking|from a single harvest|in a dark glass bottle",
        "oil for salad dressing|mediterranean cooking oil",
    ),
    "Spices": _w(
        "Spice",
        "smoked paprika|cumin|curry|chilli|cinnamon",
        "ground fresh for strong flavour|in a resealable jar|for curries and stews",
        "seasoning to add flavour to curry|herbs and seasoning for cooking",
    ),
    "Chocolate": _w(
        "Chocolate",
        "dark|milk|70% cocoa|hazelnut|sea-salt",
        "made from fair-trade cocoa|in a 100 g bar|that melts smoothly",
        "sweet treat made of cocoa|a bar of something sweet",
    ),
    "Crisps": _w(
        "Crisps",
        "salted|sour-cream|kettle-cooked|paprika|vegetable",
        "sliced thin and crunchy|in a sharing bag|cooked in sunflower oil",
        "salty snack for a movie night|potato chips",
    ),
    "Nuts": _w(
        "Nuts",
        "roasted|cashew|mixed|salted|unsalted",
        "packed with protein|in a resealable pouch|for trail mix and baking",
        "healthy protein snack|almonds and cashews to munch",
    ),
}
