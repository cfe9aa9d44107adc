/**
 * Name tables of the synthetic county: English and Spanish given names and surnames, roughly in
 * order of frequency (the generator draws them with Zipf weights, so "Maria Garcia" and "James
 * Smith" recur the way they do in real rosters), the county's ZIP codes, and the nickname table.
 * Names carry their accents and punctuation ("José", "O'Brien"); record styles strip them later.
 */

/** Splits a comma-separated table (kept as text so it stays compact under Prettier). */
function list(text: string): readonly string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export const ENGLISH_MALE_NAMES = list(`
  James, Robert, John, Michael, William, David, Richard, Joseph, Thomas, Charles, Christopher,
  Daniel, Matthew, Anthony, Donald, Mark, Paul, Steven, Andrew, Kenneth, Joshua, Kevin, Brian,
  George, Edward, Ronald, Timothy, Jason, Jeffrey, Ryan, Jacob, Gary, Nicholas, Eric, Jonathan,
  Stephen, Larry, Justin, Scott, Brandon, Benjamin, Samuel, Gregory, Frank, Alexander, Raymond,
  Patrick, Jack, Dennis, Jerry, Tyler, Aaron, Henry, Douglas, Peter, Adam, Zachary, Nathan, Walter,
  Kyle, Harold, Carl, Jeremy, Keith, Roger, Gerald, Ethan, Arthur, Terry, Christian, Sean, Lawrence,
  Austin, Joe, Noah, Jesse, Albert, Bryan, Billy, Bruce, Willie, Jordan, Dylan, Alan, Ralph, Gabriel,
  Roy, Juan, Wayne, Eugene, Logan, Randy, Louis, Russell, Vincent, Philip, Bobby, Johnny, Bradley,
  Theodore, Frederick, Dwayne, Darnell, Tyrone, Malik, DeShawn, Andre, Marcus, Terrell, Jamal
`);

export const ENGLISH_FEMALE_NAMES = list(`
  Mary, Patricia, Jennifer, Linda, Elizabeth, Barbara, Susan, Jessica, Sarah, Karen, Nancy, Lisa,
  Margaret, Betty, Sandra, Ashley, Dorothy, Kimberly, Emily, Donna, Michelle, Carol, Amanda, Melissa,
  Deborah, Stephanie, Rebecca, Laura, Sharon, Cynthia, Kathleen, Amy, Shirley, Angela, Helen, Anna,
  Brenda, Pamela, Nicole, Samantha, Katherine, Emma, Ruth, Christine, Catherine, Debra, Rachel,
  Carolyn, Janet, Virginia, Heather, Diane, Julie, Joyce, Victoria, Kelly, Christina, Joan, Evelyn,
  Lauren, Judith, Olivia, Frances, Martha, Cheryl, Megan, Andrea, Hannah, Jacqueline, Ann, Jean,
  Alice, Kathryn, Gloria, Teresa, Doris, Sara, Janice, Julia, Marie, Madison, Grace, Judy, Theresa,
  Beverly, Denise, Marilyn, Amber, Danielle, Abigail, Brittany, Rose, Diana, Natalie, Sophia, Alexis,
  Lori, Kayla, Jane, Alexandra, Tamika, Latoya, Keisha, Ebony, Shanice, Jasmine, Aaliyah, Imani,
  Tiffany, Crystal
`);

export const SPANISH_MALE_NAMES = list(`
  José, Juan, Luis, Carlos, Jesús, Miguel, Francisco, Jorge, Antonio, Manuel, Alejandro, Pedro,
  Ricardo, Roberto, Fernando, Eduardo, Javier, Rafael, Guillermo, Sergio, Daniel, Mario, Héctor,
  Raúl, Óscar, Enrique, Alberto, Arturo, Ramón, Víctor, Martín, Gerardo, Andrés, Rubén, Ignacio,
  Tomás, Joaquín, Julián, Adrián, Sebastián, Iván, Ángel, Salvador, Gustavo, Alfredo, Armando,
  Ernesto, Hugo, Guadalupe, Efraín
`);

export const SPANISH_FEMALE_NAMES = list(`
  María, Guadalupe, Rosa, Ana, Juana, Margarita, Verónica, Patricia, Elena, Teresa, Carmen, Laura,
  Gabriela, Adriana, Leticia, Alejandra, Claudia, Yolanda, Silvia, Sofía, Lucía, Isabel, Mónica,
  Raquel, Beatriz, Inés, Dolores, Rosario, Mercedes, Consuelo, Graciela, Concepción, Cristina,
  Lourdes, Marisol, Araceli, Esperanza, Josefina, Natalia, Ximena, Valeria, Daniela, Andrea, Paola,
  Mariana, Fernanda, Citlali, Itzel, Yesenia, Maribel
`);

export const ENGLISH_SURNAMES = list(`
  Smith, Johnson, Williams, Brown, Jones, Miller, Davis, Wilson, Anderson, Taylor, Thomas, Moore,
  Jackson, Martin, Lee, Thompson, White, Harris, Clark, Lewis, Robinson, Walker, Young, Allen, King,
  Wright, Scott, Hill, Green, Adams, Nelson, Baker, Hall, Campbell, Mitchell, Carter, Roberts,
  Phillips, Evans, Turner, Parker, Collins, Edwards, Stewart, Morris, Murphy, Cook, Rogers, Morgan,
  Cooper, Peterson, Reed, Bailey, Bell, Kelly, Howard, Ward, Cox, Richardson, Wood, Watson, Brooks,
  Bennett, Gray, James, Hughes, Price, Sanders, Myers, Long, Ross, Foster, Powell, Jenkins, Perry,
  Russell, Sullivan, Fisher, Henderson, Coleman, Patterson, Jordan, Reynolds, Hamilton, Graham,
  Wallace, Washington, Butler, Simmons, Bryant, O'Brien, O'Connor, O'Neill, O'Malley, McDonald,
  McCarthy, MacKenzie, D'Angelo, St. John, Van Dyke, Nguyen, Tran, Pham, Kim, Park, Patel, Shah,
  Chen, Wong, Yang
`);

export const SPANISH_SURNAMES = list(`
  García, Rodríguez, Martínez, Hernández, López, González, Pérez, Sánchez, Ramírez, Torres, Flores,
  Rivera, Gómez, Díaz, Reyes, Morales, Cruz, Ortiz, Gutiérrez, Chávez, Ramos, Vásquez, Castillo,
  Jiménez, Moreno, Romero, Herrera, Medina, Aguilar, Vargas, Núñez, Peña, Muñoz, Ibáñez, Méndez,
  Domínguez, Fernández, Álvarez, Ruiz, Mendoza, Castro, Guerrero, Delgado, Ortega, Soto, Contreras,
  Salazar, Luna, Estrada, Cervantes, De la Cruz, De León, Del Río, Quiñones, Zúñiga, Espinoza,
  Sandoval, Cárdenas, Orozco, Velázquez
`);

/** The county's ZIP codes, most populous first. */
export const COUNTY_ZIPS = list(`
  93301, 93304, 93305, 93306, 93307, 93308, 93309, 93311, 93312, 93313, 93314, 93215, 93263, 93280,
  93250, 93203, 93241, 93505, 93501, 93555
`);

/**
 * Formal given names and the nicknames people go by, English and Spanish (about 90 names). A record
 * may carry any of them in place of the formal name.
 */
export const NICKNAMES: Readonly<Record<string, readonly string[]>> = {
  // English, male
  Robert: ['Bob', 'Rob', 'Bobby'],
  William: ['Bill', 'Will', 'Billy'],
  James: ['Jim', 'Jimmy', 'Jamie'],
  John: ['Jack', 'Johnny'],
  Michael: ['Mike', 'Mikey'],
  Richard: ['Rick', 'Dick', 'Richie'],
  Joseph: ['Joe', 'Joey'],
  Thomas: ['Tom', 'Tommy'],
  Charles: ['Charlie', 'Chuck'],
  Christopher: ['Chris'],
  Daniel: ['Dan', 'Danny'],
  Matthew: ['Matt'],
  Anthony: ['Tony'],
  Donald: ['Don', 'Donnie'],
  Steven: ['Steve'],
  Stephen: ['Steve'],
  Andrew: ['Andy', 'Drew'],
  Kenneth: ['Ken', 'Kenny'],
  Joshua: ['Josh'],
  Edward: ['Ed', 'Eddie', 'Ted'],
  Ronald: ['Ron', 'Ronnie'],
  Timothy: ['Tim'],
  Jeffrey: ['Jeff'],
  Nicholas: ['Nick'],
  Jonathan: ['Jon'],
  Benjamin: ['Ben'],
  Samuel: ['Sam'],
  Gregory: ['Greg'],
  Alexander: ['Alex'],
  Raymond: ['Ray'],
  Patrick: ['Pat'],
  Lawrence: ['Larry'],
  Gerald: ['Jerry'],
  Douglas: ['Doug'],
  Zachary: ['Zach'],
  Jacob: ['Jake'],
  Theodore: ['Ted', 'Teddy'],
  Frederick: ['Fred', 'Freddie'],
  Walter: ['Walt'],
  Harold: ['Harry', 'Hal'],
  Philip: ['Phil'],
  Bradley: ['Brad'],
  Vincent: ['Vince'],
  Eugene: ['Gene'],
  // English, female
  Elizabeth: ['Liz', 'Beth', 'Betty', 'Lizzie'],
  Margaret: ['Maggie', 'Peggy', 'Meg'],
  Jennifer: ['Jen', 'Jenny'],
  Patricia: ['Pat', 'Patty', 'Trish'],
  Katherine: ['Kathy', 'Kate', 'Katie'],
  Catherine: ['Cathy', 'Cat'],
  Kathleen: ['Kathy', 'Kathie'],
  Deborah: ['Debbie', 'Deb'],
  Debra: ['Debbie', 'Deb'],
  Susan: ['Sue', 'Susie'],
  Jessica: ['Jess'],
  Rebecca: ['Becky', 'Becca'],
  Victoria: ['Vicky', 'Tori'],
  Kimberly: ['Kim'],
  Christine: ['Chris', 'Chrissy'],
  Christina: ['Tina', 'Chris'],
  Samantha: ['Sam'],
  Stephanie: ['Steph'],
  Barbara: ['Barb'],
  Dorothy: ['Dot', 'Dottie'],
  Pamela: ['Pam'],
  Cynthia: ['Cindy'],
  Abigail: ['Abby'],
  Alexandra: ['Alex', 'Lexi'],
  Amanda: ['Mandy'],
  Jacqueline: ['Jackie'],
  Judith: ['Judy'],
  Melissa: ['Missy'],
  Sandra: ['Sandy'],
  Theresa: ['Terry'],
  Teresa: ['Terry', 'Tere'],
  Virginia: ['Ginny'],
  Frances: ['Fran'],
  // Spanish
  José: ['Pepe', 'Chepe', 'Joe'],
  Francisco: ['Paco', 'Pancho', 'Frank'],
  Guadalupe: ['Lupe', 'Lupita'],
  Ignacio: ['Nacho'],
  Enrique: ['Kike'],
  Jesús: ['Chuy', 'Chucho'],
  Alejandro: ['Alex', 'Alejo'],
  Roberto: ['Beto'],
  Alberto: ['Beto'],
  Eduardo: ['Lalo'],
  Guillermo: ['Memo'],
  Manuel: ['Manny', 'Manolo'],
  Antonio: ['Toño', 'Tony'],
  Rafael: ['Rafa'],
  Ricardo: ['Ricky'],
  Fernando: ['Nando'],
  Gerardo: ['Jerry'],
  Ramón: ['Moncho'],
  Salvador: ['Chava'],
  Concepción: ['Concha', 'Conchita'],
  Dolores: ['Lola'],
  Rosario: ['Charo'],
  Mercedes: ['Meche'],
  María: ['Mari'],
  Margarita: ['Marga'],
  Graciela: ['Chela'],
  Consuelo: ['Chelo'],
  Isabel: ['Chabela'],
  Cristina: ['Cris'],
  Josefina: ['Pepa', 'Fina'],
};
