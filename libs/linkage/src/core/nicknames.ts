/**
 * Given names and the names people go by, English and Spanish. Linkage treats a nickname and its
 * formal name as one *name group*: "Bob", "Robert" and "Bobby" compare as a nickname match and
 * block together. Names are written folded (lower case, no accents, letters only).
 */
const TABLE: Readonly<Record<string, string>> = {
  // English, male
  robert: 'bob bobby rob robbie',
  william: 'bill billy will willie liam',
  james: 'jim jimmy jamie jimbo',
  john: 'jack johnny jon',
  jonathan: 'jon jonny',
  michael: 'mike mikey mick mickey',
  richard: 'rick ricky dick richie rich',
  joseph: 'joe joey jos',
  thomas: 'tom tommy',
  charles: 'charlie chuck chas',
  christopher: 'chris topher kit',
  daniel: 'dan danny',
  matthew: 'matt matty',
  anthony: 'tony ant',
  donald: 'don donnie donny',
  steven: 'steve stevie',
  stephen: 'steve stevie',
  andrew: 'andy drew',
  kenneth: 'ken kenny',
  joshua: 'josh',
  edward: 'ed eddie ted ned',
  ronald: 'ron ronnie',
  timothy: 'tim timmy',
  jeffrey: 'jeff',
  geoffrey: 'geoff jeff',
  nicholas: 'nick nicky',
  benjamin: 'ben benny',
  samuel: 'sam sammy',
  gregory: 'greg',
  alexander: 'alex xander',
  raymond: 'ray',
  patrick: 'pat paddy',
  lawrence: 'larry',
  gerald: 'jerry gerry',
  douglas: 'doug',
  zachary: 'zach zack',
  jacob: 'jake',
  theodore: 'ted teddy theo',
  frederick: 'fred freddie freddy',
  walter: 'walt wally',
  harold: 'harry hal',
  henry: 'hank harry',
  philip: 'phil',
  phillip: 'phil',
  bradley: 'brad',
  vincent: 'vince vinny',
  eugene: 'gene',
  david: 'dave davey',
  peter: 'pete',
  albert: 'al bert',
  alan: 'al',
  allen: 'al',
  arthur: 'art',
  francis: 'frank fran',
  franklin: 'frank',
  leonard: 'leo len lenny',
  louis: 'lou',
  nathaniel: 'nate nathan',
  nathan: 'nate',
  russell: 'russ',
  terrence: 'terry',
  terence: 'terry',
  jeremy: 'jerry',
  dennis: 'denny',
  samson: 'sam',
  gabriel: 'gabe',
  randall: 'randy',
  randolph: 'randy',
  clifford: 'cliff',
  calvin: 'cal',
  mitchell: 'mitch',
  maxwell: 'max',
  montgomery: 'monty',
  // English, female
  elizabeth: 'liz lizzie beth betty betsy eliza libby',
  margaret: 'maggie peggy meg marge',
  jennifer: 'jen jenny',
  patricia: 'pat patty trish tricia',
  katherine: 'kathy kate katie kat',
  catherine: 'cathy cat kate',
  kathleen: 'kathy kathie',
  kathryn: 'kathy kate',
  deborah: 'debbie deb',
  debra: 'debbie deb',
  susan: 'sue susie',
  jessica: 'jess jessie',
  rebecca: 'becky becca',
  victoria: 'vicky tori',
  kimberly: 'kim',
  christine: 'chris chrissy',
  christina: 'tina chris',
  samantha: 'sam sammy',
  stephanie: 'steph',
  barbara: 'barb barbie',
  dorothy: 'dot dottie',
  pamela: 'pam',
  cynthia: 'cindy',
  abigail: 'abby',
  alexandra: 'alex lexi',
  amanda: 'mandy',
  jacqueline: 'jackie',
  judith: 'judy',
  melissa: 'missy mel',
  sandra: 'sandy',
  theresa: 'terry tess',
  teresa: 'terry tere tess',
  virginia: 'ginny',
  frances: 'fran frannie',
  nancy: 'nan',
  carolyn: 'carol',
  caroline: 'carol',
  donna: 'donnie',
  michelle: 'shelly',
  angela: 'angie',
  cheryl: 'cher',
  janet: 'jan',
  natalie: 'nat',
  valerie: 'val',
  gwendolyn: 'gwen',
  // Spanish
  jose: 'pepe chepe joe',
  francisco: 'paco pancho frank cisco',
  guadalupe: 'lupe lupita',
  ignacio: 'nacho',
  enrique: 'kike quique',
  jesus: 'chuy chucho',
  alejandro: 'alex alejo',
  roberto: 'beto',
  alberto: 'beto',
  eduardo: 'lalo',
  guillermo: 'memo',
  manuel: 'manny manolo',
  antonio: 'tono tony',
  rafael: 'rafa',
  ricardo: 'ricky',
  fernando: 'nando',
  gerardo: 'jerry',
  ramon: 'moncho',
  salvador: 'chava',
  concepcion: 'concha conchita',
  dolores: 'lola',
  rosario: 'charo',
  mercedes: 'meche',
  maria: 'mari',
  margarita: 'marga',
  graciela: 'chela',
  consuelo: 'chelo',
  isabel: 'chabela',
  cristina: 'cris',
  josefina: 'pepa fina',
  javier: 'javi',
  santiago: 'santi',
  adrian: 'adri',
  gabriela: 'gabi',
  daniela: 'dani',
};

/** Name → the names of its group (itself, its nicknames, and names that share a nickname with it). */
function buildGroups(): Map<string, string> {
  // Union-find over names: a nickname shared by two formal names ("pat") joins their groups.
  const parent = new Map<string, string>();
  const find = (name: string): string => {
    let root = name;
    while (parent.get(root) !== root) root = parent.get(root)!;
    let node = name;
    while (node !== root) {
      const next = parent.get(node)!;
      parent.set(node, root);
      node = next;
    }
    return root;
  };
  const add = (name: string) => {
    if (!parent.has(name)) parent.set(name, name);
  };
  const union = (a: string, b: string) => {
    const ra = find(a);
    const rb = find(b);
    // The representative is the alphabetically first name, so groups do not depend on table order.
    if (ra < rb) parent.set(rb, ra);
    else if (rb < ra) parent.set(ra, rb);
  };
  for (const [formal, nicknames] of Object.entries(TABLE)) {
    add(formal);
    for (const nickname of nicknames.split(' ')) {
      add(nickname);
      union(formal, nickname);
    }
  }
  const groups = new Map<string, string>();
  for (const name of parent.keys()) groups.set(name, find(name));
  return groups;
}

const GROUPS = buildGroups();

/**
 * The name group of a folded given name: the representative of its nickname group, or the name
 * itself when it has no nicknames. `nameGroup('bobby') === nameGroup('robert')`.
 */
export function nameGroup(folded: string): string {
  return GROUPS.get(folded) ?? folded;
}

/** How many names the nickname table knows (formal names and nicknames). */
export const NICKNAME_TABLE_SIZE = GROUPS.size;
